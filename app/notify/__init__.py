"""The seam where a notification leaves the service: senders behind one contract.

- :mod:`app.notify.base`: the contract every sender implements, and the pure
  decisions on a provider's answers (classification, retry waits, collapse key);
- :mod:`app.notify.log`: the default sender, one log line per device;
- :mod:`app.notify.fcm`: Firebase Cloud Messaging HTTP v1;
- :mod:`app.notify.fake_fcm`: a local fake of FCM and its token endpoint, for
  tests, the benchmark and a demo.
"""
