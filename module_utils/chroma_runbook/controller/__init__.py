"""controller: code for ansible's own processes on the controller, imported by the action plugins only.

No module imports it, so it is never shipped to a host. It imports ansible-core's internals, and only
here.
"""
