"""Step 4 of the guide: impressions and clicks, from the page to Klevu's collector.

``routes`` takes the beacon's posts and no-JavaScript clicks, checks them against the
banner's signed token (``tokens``), builds Klevu's events (``events``) and writes them to a
durable queue (``outbox``); ``relay`` delivers batches with retries; ``delivery`` binds both
to the app. ``recently_viewed`` remembers clicked items for the banners that use them.
"""
