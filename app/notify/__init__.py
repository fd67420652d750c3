"""The seam where a notification leaves the service: senders behind one contract.

- :mod:`app.notify.base`: the contract every sender implements;
- :mod:`app.notify.log`: the default sender, one log line per device.
"""
