"""Identity, data catalogue and policy, consent, crypto, audit and privacy.

Nothing here imports ``gateway``, ``schema`` or ``connectors``: security is a leaf that
every other package may use.
"""
