"""Step 3's sandbox: a config's base template (JSv2 dialect) and CSS → safe HTML.

``engine`` runs the template in V8 with JSv2's helpers (``js/``), ``once`` renders each
answer once, ``sanitize`` keeps only safe markup and scoped CSS, ``inline_styles`` lifts
``style`` attributes into the scoped stylesheet. Nothing here knows about segments, banners'
configs or analytics: it turns a template and data into HTML.
"""
