// Klevu's template dialect, compiled the way its browser library (JSv2) compiles it.
//
// JSv2 uses Underscore's micro-template algorithm with three delimiters:
//   <% code %>   runs JavaScript;
//   <%= expr %>  outputs the value as it is (null and undefined print nothing);
//   <%- expr %>  outputs encodeURIComponent(value): Klevu's "escape" is URL encoding, NOT HTML
//                escaping, and templates rely on that for query strings.
// The body runs inside `with (data || {})` so bare names resolve against the data, and the
// function is called as (data, dataLocal, helper, scope). `print(...)` appends to the output
// like Underscore's. Compiling here, inside the engine, keeps every corner of the dialect
// (string escaping, operator precedence inside delimiters) identical to the browser's.

var compileKlevuTemplate = (function () {
    "use strict";
    var DELIMITERS = /<%-([\s\S]+?)%>|<%=([\s\S]+?)%>|<%([\s\S]+?)%>|$/g;
    var LITERAL_ESCAPES = {"'": "'", "\\": "\\", "\r": "r", "\n": "n", "\u2028": "u2028", "\u2029": "u2029"};
    var LITERAL_SPECIALS = /\\|'|\r|\n|\u2028|\u2029/g;
    // Captured before any template runs (and before harden.js guards the built-ins).
    var encode = encodeURIComponent;
    var push = Array.prototype.push;
    var join = Array.prototype.join;
    var makeFunction = Function;   // harden.js refuses code from strings to templates
    // Code that would run after the render returned (engine.py explains why it cannot): the
    // keywords `import`, `await` and `async`, found as tokens of the code. Strings, template
    // text, comments and regular expressions are skipped, and so are the same words used as
    // names (`data.import`, `{await: 1}`, `var async = 1`), which JavaScript allows.
    var TOKENS = new RegExp([
        "\\/\\/[^\\n]*", "\\/\\*[\\s\\S]*?(?:\\*\\/|$)",           // comments
        "'(?:[^'\\\\]|\\\\[\\s\\S])*'?", "\"(?:[^\"\\\\]|\\\\[\\s\\S])*\"?",  // strings
        "`(?:[^`\\\\]|\\\\[\\s\\S])*`?",                         // template text (${} inside too)
        "[A-Za-z_$][\\w$]*",                                      // names and keywords
        "\\/(?:[^\\/\\\\\\n\\[]|\\\\.|\\[(?:[^\\]\\\\\\n]|\\\\.)*\\])+\\/[a-z]*",  // a regex
        "[^\\s]"                                                  // any other character
    ].join("|"), "g");
    var DEFERRING = {"import": true, "await": true, "async": true};
    var REGEX_MAY_FOLLOW = /^(?:[(,=:[!&|?{};+\-*%<>~^]|return|typeof|case|do|else|in|of|new|delete|void|throw)$/;

    function deferringWord(code) {
        var tokens = code.match(TOKENS) || [];
        var kept = [];
        for (var i = 0; i < tokens.length; i++) {
            var token = tokens[i];
            if (token.charAt(0) === "/" && token.length > 1 && token.charAt(1) !== "/" &&
                    token.charAt(1) !== "*" && kept.length && !REGEX_MAY_FOLLOW.test(kept[kept.length - 1])) {
                // a division, not a regex: keep its operator and read on after it
                tokens.splice.apply(tokens, [i + 1, 0].concat(token.slice(1).match(TOKENS) || []));
                token = "/";
            }
            if (token.charAt(0) === "`") {  // template text: only its ${...} parts are code
                var parts = token.split("${").slice(1);
                for (var p = 0; p < parts.length; p++) {
                    var inner = deferringWord(parts[p].split("}")[0]);
                    if (inner) {
                        return inner;
                    }
                }
                continue;
            }
            if (/^(?:\/\/|\/\*|['"])/.test(token)) {
                continue;
            }
            kept.push(token);
        }
        for (var j = 0; j < kept.length; j++) {
            var word = kept[j], before = kept[j - 1], after = kept[j + 1];
            if (!DEFERRING[word] || before === "." || after === ":" || after === "=" ||
                    (before === "var" || before === "let" || before === "const")) {
                continue;
            }
            if (word === "async" && !(after === "function" || after === "(" ||
                                      /^[A-Za-z_$]/.test(after || "") && kept[j + 2] === "=" && kept[j + 3] === ">")) {
                continue;
            }
            return word;
        }
        return null;
    }

    function refuseDeferred(code) {
        var word = deferringWord(code);
        if (word) {
            throw new SyntaxError("'" + word + "' is not available on the server: " +
                "a template's output cannot wait for later work");
        }
    }

    function literal(text) {
        return text.replace(LITERAL_SPECIALS, function (ch) { return "\\" + LITERAL_ESCAPES[ch]; });
    }

    return function compileKlevuTemplate(text) {
        var index = 0;
        var source = "__push.call(__p,'";
        text.replace(DELIMITERS, function (match, urlEncoded, raw, code, offset) {
            source += literal(text.slice(index, offset));
            index = offset + match.length;
            refuseDeferred(urlEncoded || raw || code || "");
            if (urlEncoded) {
                source += "'+\n((__t=(" + urlEncoded + "))==null?'':__encode(__t))+\n'";
            } else if (raw) {
                source += "'+\n((__t=(" + raw + "))==null?'':__t)+\n'";
            } else if (code) {
                source += "');\n" + code + "\n__push.call(__p,'";
            }
            return match;
        });
        // Underscore appends to a string (`__p+=...`); in QuickJS (the shop's engine before V8)
        // each append copied the whole output (quadratic), so the output is collected in an
        // array and joined once (docs/performance.md). What a
        // template prints is unchanged: each run of text and <%= %> values is still one string
        // concatenation, with the same conversions.
        source = "var __t,__p=[],print=function(){__push.call(__p,__join.call(arguments,''));};\n" +
            "with(data||{}){\n" + source + "');\n}\nreturn __join.call(__p,'');\n";
        var makeTemplate = new makeFunction("__encode", "__push", "__join",
            "return function(data,dataLocal,helper,scope){\n" + source + "};");
        // Frozen: state a template hangs on its own function would outlive the render.
        return Object.freeze(makeTemplate(encode, push, join));
    };
})();

// Runs a compiled template on one banner's data. `payload` is JSON text, parsed here so the
// template only ever sees plain data; `maxChars` bounds the output before it leaves the engine.
var renderKlevuTemplate = (function () {
    "use strict";
    var parse = JSON.parse;
    var names = Object.getOwnPropertyNames;
    var deleteProperty = Reflect.deleteProperty;
    var isWellFormed = String.prototype.isWellFormed;
    var globalsBeforeAnyTemplate = null;

    function snapshotGlobals() {
        var seen = Object.create(null);
        names(globalThis).forEach(function (name) { seen[name] = true; });
        return seen;
    }

    function forgetNewGlobals() {
        // Sloppy template code may create globals (`<% total = 0 %>`). Like a fresh browser
        // page, the next render must not see them.
        var current = names(globalThis);
        for (var i = 0; i < current.length; i++) {
            if (!globalsBeforeAnyTemplate[current[i]] && !deleteProperty(globalThis, current[i])) {
                // Only a new engine is clean again: render.py replaces it on this error.
                var spent = new Error("template defined a permanent global: " + current[i]);
                Object.defineProperty(spent, "name", {value: "EngineSpentError"});
                throw spent;
            }
        }
    }

    // `renderTools(data)` (helpers.js) gives this render its own helper and default scope.
    // As in JSv2, an omitted dataLocal is the data and an omitted scope the engine's own.
    return function renderKlevuTemplate(compiled, renderTools, payload, maxChars) {
        if (globalsBeforeAnyTemplate === null) {
            globalsBeforeAnyTemplate = snapshotGlobals();
        }
        // Also before: a render stopped by the time limit skipped its `finally`.
        forgetNewGlobals();
        var input = parse(payload);
        var tools = renderTools(input.data);
        var dataLocal = input.dataLocal === undefined ? input.data : input.dataLocal;
        var scope = input.scope === undefined ? tools.scope : input.scope;
        var html;
        try {
            html = compiled(input.data, dataLocal, tools.helper, scope);
        } finally {
            forgetNewGlobals();
        }
        if (typeof html !== "string") {  // `<% return 42 %>` ends the template early
            throw new TypeError("template returned " + typeof html + " instead of HTML");
        }
        if (html.length > maxChars) {
            throw new RangeError("template output exceeds " + maxChars + " characters");
        }
        if (!isWellFormed.call(html)) {  // a lone surrogate cannot leave as UTF-8
            throw new TypeError("template output is not valid text");
        }
        return html;
    };
})();
