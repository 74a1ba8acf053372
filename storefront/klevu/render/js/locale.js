// The shop's locale as the default of every locale-sensitive built-in, as a browser's language
// is the default of a page's.
//
// Templates written for browsers call `price.toLocaleString()`, `new Intl.NumberFormat()` or
// `a.localeCompare(b)` without a locale and get the visitor's browser language. On the server
// the engine's own default would be whatever its process inherited, so each of these built-ins
// is given the shop's locale (STOREFRONT_LOCALE) whenever the template passes none. Only the
// default changes: formatting itself stays the engine's (V8's, with ICU, as in Chromium). A
// locale the template names explicitly is used as it is.

var installKlevuLocale = (function () {
    "use strict";
    var apply = Reflect.apply;
    var construct = Reflect.construct;
    var define = Object.defineProperty;
    var slice = Array.prototype.slice;  // captured before harden.js guards it

    // Intl constructors whose first argument is `locales`.
    var CONSTRUCTORS = ["Collator", "DateTimeFormat", "DisplayNames", "DurationFormat",
        "ListFormat", "NumberFormat", "PluralRules", "RelativeTimeFormat", "Segmenter"];

    // Prototype methods, with the position of their `locales` argument.
    var METHODS = [
        [Number.prototype, "toLocaleString", 0],
        [BigInt.prototype, "toLocaleString", 0],
        [Date.prototype, "toLocaleString", 0],
        [Date.prototype, "toLocaleDateString", 0],
        [Date.prototype, "toLocaleTimeString", 0],
        [String.prototype, "localeCompare", 1],
        [String.prototype, "toLocaleLowerCase", 0],
        [String.prototype, "toLocaleUpperCase", 0]
    ];

    function withLocale(args, position, locale) {
        var copy = apply(slice, args, []);
        if (copy[position] === undefined) {
            copy[position] = locale;
        }
        return copy;
    }

    // A wrapper keeps what a template can observe of the built-in: its name and length, its
    // prototype (so `instanceof` and `.constructor` still hold), callable without `new`
    // where the built-in is, and its static methods.
    function likeBuiltin(wrapper, builtin) {
        define(wrapper, "name", {value: builtin.name});
        define(wrapper, "length", {value: builtin.length});
        return wrapper;
    }

    function wrapConstructor(Builtin, locale) {
        var Wrapper = likeBuiltin(function () {
            var args = withLocale(arguments, 0, locale);
            return new.target ? construct(Builtin, args, new.target) : apply(Builtin, this, args);
        }, Builtin);
        Object.getOwnPropertyNames(Builtin).forEach(function (key) {
            if (key !== "name" && key !== "length") {
                define(Wrapper, key, Object.getOwnPropertyDescriptor(Builtin, key));
            }
        });
        define(Builtin.prototype, "constructor", {value: Wrapper});
        return Wrapper;
    }

    function wrapMethod(builtin, position, locale) {
        return likeBuiltin(function () {
            return apply(builtin, this, withLocale(arguments, position, locale));
        }, builtin);
    }

    return function installKlevuLocale(locale) {
        // Canonical form, and a RangeError now rather than in every render if it is invalid.
        var canonical = Intl.getCanonicalLocales(locale)[0];
        // ICU loads its data on first use (tens of milliseconds): here, outside any template's
        // time limit, rather than in the first render.
        new Intl.NumberFormat(canonical, {style: "currency", currency: "USD"}).format(1);
        new Date(0).toLocaleString(canonical);
        new Intl.PluralRules(canonical).select(1);
        new Intl.Collator(canonical).compare("a", "b");
        CONSTRUCTORS.forEach(function (name) {
            if (typeof Intl[name] === "function") {
                define(Intl, name, {value: wrapConstructor(Intl[name], canonical)});
            }
        });
        METHODS.forEach(function (entry) {
            var owner = entry[0], name = entry[1];
            define(owner, name, {value: wrapMethod(owner[name], entry[2], canonical)});
        });
    };
})();
