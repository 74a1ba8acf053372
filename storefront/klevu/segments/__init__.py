"""Step 1 of the guide: the visitor's Klevu session id and segments.

``visitor`` is what step 0 hands over (the exchange id and Klaviyo's ``cid``, each only with
consent); ``resolver`` asks Klevu's visitor service (session, then segments with the Klaviyo
exchange id) and keeps the answer in the shared cache; ``cookie`` keeps a fresh answer in the
visitor's signed ``klevu_segments`` cookie so returning pages skip the cache.
"""
