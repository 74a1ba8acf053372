// The `helper` argument and default `scope` Klevu templates receive: JSv2's whole template
// helper set (docs/klevu-wire-format.md §4), so that a merchant's template written for the
// browser renders here unchanged. Each render gets fresh ones: `addTranslation` or
// `setTranslations` in one template must not change what the next template sees.
//
// Each helper gives what JSv2's own (src/klevu.js) gives, errors included: a template that
// fails in the browser fails here too (tests/unit/template_corpus/README.md has the cases).
//
//   render(name, scope, data, dataLocal, helper)  a named template of the scope; "" when the
//                                 scope has none by that name (JSv2). A banner has one template.
//   each(collection, fn)          fn(index, item) over what JSv2 counts as array-like, else
//                                 fn(key, value) over own keys; `this` is the item; returning
//                                 false stops. As in JSv2 a string, number, boolean or
//                                 undefined throws a TypeError ("" and null iterate nothing).
//   buildUrl(url, key, value)     url with key=value set (replaced when present), hash dropped;
//                                 the pair serialised as JSv2's param (encodeURIComponent: a
//                                 space is %20, undefined is "undefined", null is "", an array
//                                 is key[]=a&key[]=b, an object key[name]=value).
//   stripHtml(html)               html without anything between < and > (JSv2's regex);
//                                 entities stay as written; a non-string throws.
//   escapeHTML(value)             JSv2's entity map (& < > " ' / ` =); values without a length
//                                 (numbers, null, "") come back unchanged.
//   translator                    the translation table object (get/add/remove/set...).
//   translate(text, ...args)      the table's entry for text (else text); with arguments, each
//                                 "%s" takes the next one and surplus "%s" become "".
//   addTranslation, getTranslation, removeTranslation, setTranslations: the table's methods.
//   processCurrency(code, amount) amount formatted for the currency: the shop's registered
//                                 format for code; the records' own currency (registered by
//                                 JSv2's recommendations module) "EUR 1,234.50"; any other
//                                 code after the amount, "1,234.50USD"; null "1.00"; an
//                                 unparsable amount 0.00; an undefined code throws.

var makeKlevuHelper = (function () {
    "use strict";
    var hasOwn = Object.prototype.hasOwnProperty;
    var slice = Array.prototype.slice;

    var HTML_ENTITIES = {
        "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
        "/": "&#x2F;", "`": "&#x60;", "=": "&#x3D;"
    };
    // JSv2's defaults for a currency's number format.
    var NUMBER_FORMAT = {precision: 2, grouping: 3, decimal: ".", thousand: ","};
    // How JSv2's recommendations module shows its records' own currency when the page did not
    // register it: the code, a space, the amount.
    var RECORDS_FORMAT = "%s %s";

    // JSv2's test, quirks included: `in` throws for a non-empty string, a number or true, and
    // its window check reads a property of undefined (so each(undefined) throws as well).
    function isArrayLike(value) {
        var length = !!value && "length" in value && value.length;
        if (typeof value === "function" || (value === undefined && value.window === value)) {
            return false;
        }
        return Array.isArray(value) || length === 0 ||
            (typeof length === "number" && length > 0 && (length - 1) in value);
    }

    function each(collection, callback) {
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

    var TAGS = /(<([^>]+)>)/ig;

    function stripHtml(html) {
        return html.replace(TAGS, "");
    }

    function escapeRegExp(text) {
        return String(text).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }

    // JSv2's type names for its param(): "array", "object" (plain objects and unknown
    // classes), "date", "regexp", "error"... for objects; typeof for the rest.
    var CLASS_TYPES = {"[object Array]": "array", "[object Date]": "date",
        "[object RegExp]": "regexp", "[object Error]": "error", "[object Boolean]": "boolean",
        "[object Number]": "number", "[object String]": "string", "[object Function]": "function",
        "[object Symbol]": "symbol", "[object Object]": "object"};
    var classOf = Object.prototype.toString;

    function typeName(value) {
        if (value === null) {
            return "null";
        }
        return typeof value === "object" || typeof value === "function" ?
            CLASS_TYPES[classOf.call(value)] || "object" : typeof value;
    }

    function addPair(pairs, key, value) {
        if (typeof value === "function" && typeof value.nodeType !== "number") {
            value = value();
        }
        pairs.push(encodeURIComponent(key) + "=" + encodeURIComponent(value === null ? "" : value));
    }

    // JSv2's param() for one key: arrays as key[]=v (key[i] for an object inside), objects
    // as key[name]=v, anything else as key=v.
    function serialise(prefix, value, pairs) {
        if (Array.isArray(value)) {
            for (var i = 0; i < value.length; i++) {
                var item = value[i];
                if (/\[\]$/.test(prefix)) {
                    addPair(pairs, prefix, item);
                } else {
                    serialise(prefix + "[" + (typeof item === "object" && item !== null ? i : "") + "]",
                              item, pairs);
                }
            }
        } else if (typeName(value) === "object") {
            for (var name in value) {
                serialise(prefix + "[" + name + "]", value[name], pairs);
            }
        } else {
            addPair(pairs, prefix, value);
        }
        return pairs;
    }

    function buildUrl(uri, key, value) {
        var hash = uri.indexOf("#");
        uri = hash === -1 ? uri : uri.substr(0, hash);
        var separator = uri.indexOf("?") !== -1 ? "&" : "?";
        var pair = serialise(String(key), value, []).join("&");
        // JSv2 puts the key into the pattern as it is; escaping it keeps a key such as "a.b"
        // from matching other keys, and a hostile key from being a pattern at all.
        var existing = new RegExp("([?&])" + escapeRegExp(key) + "=.*?(&|$)", "i");
        return uri.match(existing) ? uri.replace(existing, "$1" + pair + "$2") : uri + separator + pair;
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

    function rounded(value, precision) {
        return Number(Math.round(Number(readAmount(Math.abs(value), ".") + "e" + precision)) +
                      "e-" + precision).toFixed(precision);
    }

    // JSv2's formatPrice: the whole part grouped (the first group by `grouping`, the rest in
    // threes, as JSv2 writes it), then the decimals.
    function formatAmount(amount, format) {
        var value = readAmount(amount, format.decimal);
        var whole = parseInt(rounded(value, format.precision), 10) + "";
        var head = whole.length > format.grouping ? whole.length % format.grouping : 0;
        return (value < 0 ? "-" : "") +
            (head ? whole.substr(0, head) + format.thousand : "") +
            whole.substr(head).replace(/(\d{3})(?=\d)/g, "$1" + format.thousand) +
            (format.precision ? format.decimal + rounded(value, format.precision).split(".")[1] : "");
    }

    // JSv2's parse for a currency's format: a format that is not text throws.
    function fillFormat(format, first, second) {
        var args = [first, second], next = 0;
        return format.replace(/%s/g, function () {
            var value = args[next++];
            return value === undefined ? "" : value;
        });
    }

    // The currency JSv2's recommendations module registers before a product banner renders:
    // the last record's, in the first query whose records name one.
    function recordsCurrency(data) {
        var found = "";
        var queries = data && typeof data.query === "object" ? data.query : null;
        for (var name in queries) {
            var results = queries[name] && queries[name].result;
            if (found === "" && Array.isArray(results)) {
                results.forEach(function (record) {
                    if (record && record.currency && record.currency.length) {
                        found = record.currency;
                    }
                });
            }
        }
        return found;
    }

    function makeCurrency(registered, ownCode) {
        var known = Object.assign({}, registered);
        if (ownCode && !hasOwn.call(known, ownCode)) {
            known[ownCode] = Object.assign({}, NUMBER_FORMAT,
                {code: ownCode, string: ownCode, format: RECORDS_FORMAT, atEnd: false});
        }

        function getCurrency(code) {
            if (code === undefined) {
                return {};
            }
            var key = code === null ? "" : String(code).replace(/^[\s\uFEFF\xA0]+|[\s\uFEFF\xA0]+$/g, "");
            if (hasOwn.call(known, key)) {
                return known[key];
            }
            return {code: key, string: key, atEnd: true, format: "%s%s"};
        }

        function processCurrency(code, amount) {
            var currency = getCurrency(code);
            var format = {};
            Object.keys(NUMBER_FORMAT).forEach(function (name) {
                format[name] = currency[name] !== undefined ? currency[name] : NUMBER_FORMAT[name];
            });
            var number = formatAmount(amount, format);
            return currency.atEnd ? fillFormat(currency.format, number, currency.string)
                : fillFormat(currency.format, currency.string, number);
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
            var currency = makeCurrency(registered, recordsCurrency(data));
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
