// Prepares a fresh engine for templates, after template.js, helpers.js, locale.js and
// harden.js are loaded: the server's renderer (render.py) and the Chromium parity test
// (tests/e2e/test_template_parity.py) both call this, so both run templates on the same set-up.
// Returns `renderTools`, which gives each render its helper and default scope (helpers.js).

var startKlevuEngine = (function () {
    "use strict";

    return function startKlevuEngine(translationsJson, currenciesJson, locale, maxStringChars) {
        var renderTools = makeKlevuHelper(translationsJson, currenciesJson);
        installKlevuLocale(locale);
        hardenKlevuEngine(maxStringChars);
        return renderTools;
    };
})();
