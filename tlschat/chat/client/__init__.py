"""The client's chat logic, by concern: ``base`` (state), ``sending`` (what the user sends),
``encrypting`` (what goes end-to-end encrypted, and what it waits for), ``decrypting`` (received
lines, plain or encrypted), ``verifying`` (``/verify``, ``/devices``), ``inbox`` (the key
directory's answers and this device's inbox), ``receiving`` (what the server sends;
:class:`ChatClient`), ``commands`` (the client's own command table); ``crypto`` and its parts
(``crypto_directory``, ``crypto_rooms``) hold the device's end-to-end state. Pure.

The glue feeds it typed lines (:meth:`ChatClient.user_input`) and received frames
(:meth:`ChatClient.handle`), shows the :class:`Line` objects they return, sends whatever
:meth:`ChatClient.take_outbox` hands back, and calls :meth:`ChatClient.tick` at
:attr:`ChatClient.wake_at` (the pace of the queued lines). With end-to-end encryption it builds a
:class:`~tlschat.chat.client.crypto.ClientCrypto` from the home's state files and, before it
sends what ``take_outbox`` returns, writes the files that ``ClientCrypto.take_dirty`` returns.
"""
