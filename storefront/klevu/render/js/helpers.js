// The `helper` argument and default `scope` Klevu templates receive: JSv2's whole template
// helper set (docs/klevu-wire-format.md §4), so that a merchant's template written for the
// browser renders here unchanged. Each render gets fresh ones: `addTranslation` or
// `setTranslations` in one template must not change what the next template sees.
//
//   render(name, scope, data, dataLocal, helper)  a named template of the scope; "" when the
//                                 scope has none by that name (JSv2). A banner has one template.
//   each(collection, fn)          fn(index, item) over array-likes, fn(key, value) over objects;
//                                 `this` is the item; returning false stops.
//   buildUrl(url, key, value)     url with key=value set (replaced when present), hash dropped.
//   stripHtml(html)               the text of the markup: tags removed, entities decoded.
//   escapeHTML(value)             JSv2's entity map (& < > " ' / ` =); values without a length
//                                 (numbers, null, "") come back unchanged.
//   translator                    the translation table object (get/add/remove/set...).
//   translate(text, ...args)      the table's entry for text (else text); with arguments, each
//                                 "%s" takes the next one and surplus "%s" become "".
//   addTranslation, getTranslation, removeTranslation, setTranslations: the table's methods.
//   processCurrency(code, amount) amount formatted for the currency: the shop's registered
//                                 format for code, else "<code> 1,234.50"; unparsable → 0.00.

var makeKlevuHelper = (function () {
    "use strict";
    var hasOwn = Object.prototype.hasOwnProperty;
    var slice = Array.prototype.slice;

    var HTML_ENTITIES = {
        "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
        "/": "&#x2F;", "`": "&#x60;", "=": "&#x3D;"
    };
    var NAMED_ENTITIES = {amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0"};
    // JSv2's defaults for a currency's number format.
    var NUMBER_FORMAT = {precision: 2, grouping: 3, decimal: ".", thousand: ","};
    // How the recommendations module shows a currency the shop did not register: the code,
    // a space, the amount.
    var UNREGISTERED_FORMAT = "%s %s";

    function isArrayLike(value) {
        return value != null && typeof value !== "function" && typeof value.length === "number";
    }

    function each(collection, callback) {
        if (collection == null) {
            return collection;
        }
        if (isArrayLike(collection)) {
            for (var i = 0; i < collection.length; i++) {
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

    function escapeHTML(value) {
        if (value && value.length) {
            return String(value).replace(/[&<>"'`=\/]/g, function (ch) { return HTML_ENTITIES[ch]; });
        }
        return value;
    }

    function decodeEntity(entity, name) {
        if (name.charAt(0) === "#") {
            var code = name.charAt(1).toLowerCase() === "x" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
            return code >= 0 && code <= 0x10ffff ? String.fromCodePoint(code) : entity;
        }
        return hasOwn.call(NAMED_ENTITIES, name) ? NAMED_ENTITIES[name] : entity;
    }

    // JSv2 reads an element's text after setting its innerHTML; without a DOM, the same text
    // is the markup without comments and tags, entities decoded.
    function stripHtml(html) {
        if (html == null) {
            return "";
        }
        return String(html)
            .replace(/<!--[\s\S]*?-->/g, "")
            .replace(/<\/?[A-Za-z][^>]*>/g, "")
            .replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z]+);/g, decodeEntity);
    }

    // Query-string encoding as JSv2's param(): space as "+".
    function encodeParam(value) {
        return encodeURIComponent(value == null ? "" : value).replace(/%20/g, "+");
    }

    function escapeRegExp(text) {
        return String(text).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }

    function buildUrl(uri, key, value) {
        uri = String(uri);
        var hash = uri.indexOf("#");
        if (hash !== -1) {
            uri = uri.slice(0, hash);
        }
        var pair = encodeParam(key) + "=" + encodeParam(value);
        // JSv2 puts the key into the pattern as it is; escaping it keeps a key such as "a.b"
        // from matching other keys, and a hostile key from being a pattern at all.
        var existing = new RegExp("([?&])" + escapeRegExp(key) + "=.*?(&|$)", "i");
        if (existing.test(uri)) {
            return uri.replace(existing, function (match, before, after) { return before + pair + after; });
        }
        return uri + (uri.indexOf("?") !== -1 ? "&" : "?") + pair;
    }

    // "%s" placeholders take the arguments in order; surplus ones become "" (JSv2's parse).
    function fill(text, args) {
        var next = 0;
        return String(text).replace(/%s/g, function () {
            var value = args[next++];
            return value === undefined ? "" : String(value);
        });
    }

    function makeTranslator(table) {
        var translator = {
            getTranslation: function (text) {
                if (text === undefined) {
                    return "";
                }
                return hasOwn.call(table, text) && table[text] !== null && table[text] !== undefined ? table[text] : text;
            },
            addTranslation: function (text, translation) {
                table[text] = translation;
                return translator;
            },
            removeTranslation: function (text) {
                delete table[text];
                return translator;
            },
            setTranslations: function (entries) {
                each(entries, function (key, value) { table[key] = value; });
                return translator;
            },
            getTranslations: function () { return table; },
            resetTranslations: function () {
                Object.keys(table).forEach(function (key) { delete table[key]; });
                return translator;
            },
            parse: function (text) { return fill(text, slice.call(arguments, 1)); },
            translate: function (text) {
                var phrase = translator.getTranslation(text);
                if (phrase == null || phrase.length === 0 || arguments.length < 2) {
                    return phrase;
                }
                return fill(phrase, slice.call(arguments, 1));
            }
        };
        return translator;
    }

    // JSv2's reading of a price: a number as it is; text stripped to digits, "-" and the
    // decimal separator; anything unreadable (or NaN) is 0.
    function readAmount(amount, decimal) {
        amount = amount || 0;
        if (typeof amount === "number") {
            return amount;
        }
        var cleaned = String(amount).replace(/\((?=\d+)(.*)\)/, "-$1")
            .replace(new RegExp("[^0-9\\-" + escapeRegExp(decimal) + "]", "g"), "")
            .replace(decimal, ".");
        var value = parseFloat(cleaned);
        return isNaN(value) ? 0 : value;
    }

    function roundTo(value, precision) {
        return Number(Math.round(Number(value + "e" + precision)) + "e-" + precision);
    }

    function formatAmount(amount, format) {
        var value = readAmount(amount, format.decimal);
        var rounded = roundTo(Math.abs(value), format.precision).toFixed(format.precision);
        var parts = rounded.split(".");
        var digits = parts[0];
        var grouped = "";
        while (digits.length > format.grouping) {
            grouped = format.thousand + digits.slice(-format.grouping) + grouped;
            digits = digits.slice(0, -format.grouping);
        }
        return (value < 0 ? "-" : "") + digits + grouped +
            (format.precision > 0 ? format.decimal + parts[1] : "");
    }

    function makeCurrency(registered) {
        function getCurrency(code) {
            var key = code == null ? "" : String(code).trim();
            if (hasOwn.call(registered, key)) {
                return registered[key];
            }
            return {code: key, string: key, atEnd: false, format: UNREGISTERED_FORMAT};
        }

        function processCurrency(code, amount) {
            var currency = getCurrency(code);
            var format = {};
            Object.keys(NUMBER_FORMAT).forEach(function (name) {
                format[name] = currency[name] !== undefined ? currency[name] : NUMBER_FORMAT[name];
            });
            var number = formatAmount(amount, format);
            return currency.atEnd ? fill(currency.format, [number, currency.string])
                : fill(currency.format, [currency.string, number]);
        }

        return {getCurrency: getCurrency, processCurrency: processCurrency,
                formatPrice: function (amount) { return formatAmount(amount, NUMBER_FORMAT); },
                unformatPrice: function (amount) { return readAmount(amount, NUMBER_FORMAT.decimal); }};
    }

    function renderNamed(name, scope, data, dataLocal, helper) {
        var list = scope && typeof scope.getTemplateSettings === "function" ?
            scope.getTemplateSettings().templateList : null;
        var template = list && hasOwn.call(list, name) ? list[name] : null;
        if (typeof template !== "function") {
            return "";
        }
        if (dataLocal === undefined) {
            dataLocal = data;
        }
        return template(data, dataLocal, helper || scope.getHelpers(), scope);
    }

    // registered: {code: {string, format, atEnd, precision, grouping, decimal, thousand}},
    // already validated by the shop's configuration.
    return function makeKlevuHelper(translationsJson, currenciesJson) {
        var translations = JSON.parse(translationsJson);
        var registered = JSON.parse(currenciesJson || "{}");
        Object.keys(registered).forEach(function (code) {
            registered[code] = Object.assign({code: code, string: code, format: "%s%s", atEnd: false},
                                             registered[code]);
        });

        // One call per render: fresh helper (with its own translation table) and scope.
        return function newRenderTools(data) {
            var translator = makeTranslator(Object.assign({}, translations));
            var currency = makeCurrency(registered);
            translator.getCurrencyObject = function () { return currency; };
            var helper = {
                render: function (name, scope, renderData, dataLocal, renderHelper) {
                    return renderNamed(name, scope === undefined ? defaultScope : scope,
                                       renderData === undefined ? data : renderData, dataLocal,
                                       renderHelper === undefined ? helper : renderHelper);
                },
                each: each,
                buildUrl: buildUrl,
                stripHtml: stripHtml,
                escapeHTML: escapeHTML,
                translator: translator,
                translate: translator.translate,
                addTranslation: translator.addTranslation,
                getTranslation: translator.getTranslation,
                removeTranslation: translator.removeTranslation,
                setTranslations: translator.setTranslations,
                processCurrency: currency.processCurrency
            };
            // JSv2's default scope is its template engine; a server render has one template
            // and no named ones to offer.
            var templateSettings = {templateList: {}, helpers: helper, data: data};
            var defaultScope = {
                getTemplateSettings: function () { return templateSettings; },
                getHelpers: function () { return helper; },
                hasData: function () { return data != null && Object.keys(data).length > 0; },
                getData: function () { return data; },
                render: function (name, scope, renderData, dataLocal, renderHelper) {
                    return helper.render(name, scope, renderData, dataLocal, renderHelper);
                },
                stripHtml: stripHtml,
                translate: translator.translate,
                getTranslator: function () { return translator; }
            };
            return {helper: Object.freeze(helper), scope: defaultScope};
        };
    };
})();
