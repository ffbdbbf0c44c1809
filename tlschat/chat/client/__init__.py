"""The client's chat logic, by concern: ``base`` (state), ``sending`` (what the user sends),
``receiving`` (what the server sends; :class:`ChatClient`), ``commands`` (the client's own
command table). Pure.

The glue feeds it typed lines (:meth:`ChatClient.user_input`) and received frames
(:meth:`ChatClient.handle`), shows the :class:`Line` objects they return, sends whatever
:meth:`ChatClient.take_outbox` hands back, and calls :meth:`ChatClient.tick` at
:attr:`ChatClient.wake_at` (the pace of the queued lines).
"""
