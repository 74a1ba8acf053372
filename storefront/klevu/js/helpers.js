// The `helper` argument Klevu templates receive: the part of JSv2's template helpers that a
// recommendations banner can use on a server. Browser-only helpers (cookies, DOM lookups,
// sub-template rendering) are deliberately absent: a template calling one fails, and the
// storefront shows its own banner instead.
//
//   escapeHTML(value)             JSv2's entity map (& < > " ' / ` =); values that are empty or
//                                 have no length (numbers, null) come back unchanged, as in JSv2.
//   each(collection, fn)          fn(index, item) over arrays and array-likes, fn(key, value) over
//                                 objects; `this` is the item; returning false stops, like JSv2.
//   processCurrency(code, amount) the amount as a shop shows it, from CURRENCY_FORMATS below.
//   translate(text, ...args)      the translation table's entry for `text` (else `text`), with
//                                 each "%s" replaced by the next argument.
//   hasResults(data, listId)      whether data.query[listId] has at least one record.

var makeKlevuHelper = (function () {
    "use strict";
    var hasOwn = Object.prototype.hasOwnProperty;

    var HTML_ENTITIES = {
        "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
        "/": "&#x2F;", "`": "&#x60;", "=": "&#x3D;"
    };

    // JSv2 formats prices from a per-currency table of symbol, decimal places and separators,
    // which merchants customise. Here the table matches the shop's own pages (the `money`
    // filter in storefront/shop/views.py), so a Klevu banner and the shop's fallback banner
    // show a price the same way: "€1,250.00", "$5.00", an unknown code as "XYZ 10.00"; plus
    // the usual conventions of other currencies: "¥1,200", "199.00 kr".
    var CURRENCY_FORMATS = {
        EUR: {symbol: "€"}, USD: {symbol: "$"}, GBP: {symbol: "£"},
        AUD: {symbol: "A$"}, CAD: {symbol: "CA$"}, NZD: {symbol: "NZ$"}, SGD: {symbol: "S$"},
        HKD: {symbol: "HK$"}, INR: {symbol: "₹"}, CNY: {symbol: "CN¥"}, ILS: {symbol: "₪"},
        CHF: {symbol: "CHF "}, ZAR: {symbol: "R"}, BRL: {symbol: "R$"}, MXN: {symbol: "MX$"},
        JPY: {symbol: "¥", decimals: 0}, KRW: {symbol: "₩", decimals: 0},
        SEK: {symbol: " kr", atEnd: true}, NOK: {symbol: " kr", atEnd: true},
        DKK: {symbol: " kr.", atEnd: true}, PLN: {symbol: " zł", atEnd: true},
        CZK: {symbol: " Kč", atEnd: true}
    };

    function escapeHTML(value) {
        if (value && value.length) {
            return String(value).replace(/[&<>"'`=\/]/g, function (ch) { return HTML_ENTITIES[ch]; });
        }
        return value;
    }

    function each(collection, callback) {
        if (collection == null) {
            return collection;
        }
        var length = collection.length;
        if (typeof length === "number" && typeof collection !== "function") {
            for (var i = 0; i < length; i++) {
                if (callback.call(collection[i], i, collection[i]) === false) {
                    break;
                }
            }
        } else {
            for (var key in collection) {
                if (hasOwn.call(collection, key) &&
                        callback.call(collection[key], key, collection[key]) === false) {
                    break;
                }
            }
        }
        return collection;
    }

    function groupThousands(digits) {
        return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    }

    // A missing or unparsable amount prints nothing rather than "NaN".
    function processCurrency(code, amount) {
        var value = typeof amount === "number" ? amount : parseFloat(amount);
        if (!isFinite(value)) {
            return "";
        }
        var currency = code == null ? "" : String(code).toUpperCase();
        var format = hasOwn.call(CURRENCY_FORMATS, currency) ? CURRENCY_FORMATS[currency] : null;
        var decimals = format && format.decimals !== undefined ? format.decimals : 2;
        var parts = Math.abs(value).toFixed(decimals).split(".");
        var number = groupThousands(parts[0]) + (parts.length > 1 ? "." + parts[1] : "");
        var sign = value < 0 && Number(parts.join("")) !== 0 ? "-" : "";
        if (format === null) {
            return sign + (currency ? currency + " " : "") + number;
        }
        return format.atEnd ? sign + number + format.symbol : sign + format.symbol + number;
    }

    function hasResults(data, listId) {
        var list = data && data.query && data.query[listId];
        return Boolean(list && list.result && list.result.length > 0);
    }

    return function makeKlevuHelper(translationsJson) {
        var translations = JSON.parse(translationsJson);

        function translate(text) {
            var phrase = typeof text === "string" && hasOwn.call(translations, text) ? translations[text] : text;
            if (typeof phrase !== "string") {
                return phrase;
            }
            var args = arguments;
            var next = 1;
            return phrase.replace(/%s/g, function (placeholder) {
                return next < args.length ? String(args[next++]) : placeholder;
            });
        }

        var helper = {
            escapeHTML: escapeHTML,
            each: each,
            processCurrency: processCurrency,
            translate: translate,
            hasResults: hasResults
        };
        Object.keys(helper).forEach(function (name) { Object.freeze(helper[name]); });
        return Object.freeze(helper);
    };
})();
