"""The end-to-end layer: a thin, typed wrapper over vodozemac (Olm, Megolm, SAS); pure like chat/.

- ``device``: this client home's device (a vodozemac account), its keys signed by the user's
  identity key, and its one-time keys signed by the device.
- ``olm``: pairwise Olm sessions with other devices.
- ``megolm``: the Megolm session this device sends with in an encrypted room, rotated.
- ``room_keys``: the Megolm keys received from others, bound to room and sender, and replays.
- ``sas``: SAS verification of another device (emoji or decimals, then MACs of the keys);
  ``sas_emoji`` holds the emoji table.
- ``codec``: unpadded base64 and the sealed pickles of this layer's own state.
- ``errors``: the base error of the layer.

The chat layer decides what to encrypt for whom; this layer does the cryptography. Neither
touches sockets.
"""
