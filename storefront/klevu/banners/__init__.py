"""Steps 2 and 3 of the guide: from a placement's config to the banner in the page.

``placement`` runs one banner: config (with the visitor's ``sids``) → plan (``rules``: show
it or not) → search (``queries``: the record query edited for the page) → records → render.
``answers`` caches Klevu's config and search answers; ``template_data`` and ``links`` shape
what the template sees and where its links go.
"""
