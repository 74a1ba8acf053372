// Makes the engine's shared state immutable before any template runs, so that each render
// depends only on its template and data, and so that the engine's limits can stop it.
//
// 1. Array built-ins refuse more than MAX_NATIVE_LENGTH elements. On a sparse or array-like
//    `length` near 2**53, `Array(2**32 - 1).join()` or `[].indexOf.call({length: 2**53})`
//    would loop for hours inside one built-in without allocating (so without meeting the
//    memory limit either). A banner has a dozen products.
// 2. Built-ins that make a string in one step refuse a result longer than `maxStringChars`
//    (derived from the memory limit by render.py). The engine checks its memory limit after
//    each garbage collection, so one allocation of a 256 MiB string would otherwise pass a
//    32 MiB limit before anything noticed.
// 3. Code made from strings (`eval`, `Function`, a generator's constructor) is refused: the
//    compiler checks template code for work that would run after the render (render.py),
//    and strings would slip past that check.
// 4. Every built-in reachable from the global object is frozen and every existing global is
//    made read-only, so a template cannot change what the next template sees (patching
//    Array.prototype.map, replacing encodeURIComponent, ...). Globals a template creates are
//    removed after each render (template.js).

var hardenKlevuEngine = (function () {
    "use strict";
    var MAX_NATIVE_LENGTH = 100000;
    var apply = Reflect.apply;
    var isArray = Array.isArray;
    var ownKeys = Reflect.ownKeys;
    var describe = Object.getOwnPropertyDescriptor;

    function tooLong(value) {
        return value != null && Number(value.length) > MAX_NATIVE_LENGTH;
    }

    function guarded(name, builtin) {
        return function () {
            var tooMany = tooLong(this);
            for (var i = 0; i < arguments.length && !tooMany; i++) {
                tooMany = isArray(arguments[i]) && tooLong(arguments[i]);  // concat's arrays
            }
            if (tooMany) {
                throw new RangeError("Array " + name + " refused: more than " + MAX_NATIVE_LENGTH + " elements");
            }
            return apply(builtin, this, arguments);
        };
    }

    function guardArrayBuiltins() {
        var proto = Array.prototype;
        ownKeys(proto).forEach(function (key) {
            var descriptor = describe(proto, key);
            if (key !== "constructor" && typeof descriptor.value === "function") {
                descriptor.value = guarded(String(key), descriptor.value);
                Object.defineProperty(proto, key, descriptor);
            }
        });
    }

    // What each built-in's result length will be, computed before it runs.
    var STRING_RESULT_LENGTH = {
        repeat: function (text, args) { return text.length * Number(args[0]); },
        padStart: function (text, args) { return Number(args[0]); },
        padEnd: function (text, args) { return Number(args[0]); },
        concat: function (text, args) {
            var total = text.length;
            for (var i = 0; i < args.length; i++) {
                total += typeof args[i] === "string" ? args[i].length : 0;
            }
            return total;
        }
    };

    function joinedLength(array, separator) {
        var total = 0;
        var length = Number(array.length) || 0;
        if (length > MAX_NATIVE_LENGTH) {
            return 0;   // the element guard refuses it
        }
        for (var i = 0; i < length; i++) {
            total += typeof array[i] === "string" ? array[i].length : 0;
        }
        return total + Math.max(0, length - 1) * (separator === undefined ? 1 : String(separator).length);
    }

    function guardStringBuiltins(maxStringChars) {
        var proto = String.prototype;
        Object.keys(STRING_RESULT_LENGTH).forEach(function (name) {
            var builtin = proto[name];
            var resultLength = STRING_RESULT_LENGTH[name];
            Object.defineProperty(proto, name, {value: function () {
                var text = String(this);
                if (resultLength(text, arguments) > maxStringChars) {
                    throw new RangeError("String " + name + " refused: more than " + maxStringChars + " characters");
                }
                return apply(builtin, text, arguments);
            }});
        });
        var join = Array.prototype.join;   // already guarded for its element count
        Object.defineProperty(Array.prototype, "join", {value: function (separator) {
            if (joinedLength(this, separator) > maxStringChars) {
                throw new RangeError("Array join refused: more than " + maxStringChars + " characters");
            }
            return apply(join, this, arguments);
        }});
    }

    function refuseCodeFromStrings() {
        function refusing(name) {
            var refuse = function () {
                throw new EvalError(name + " from a string is not available to templates");
            };
            Object.defineProperty(refuse, "name", {value: name});
            return refuse;
        }
        var FunctionRefused = refusing("Function");
        FunctionRefused.prototype = Function.prototype;   // `f instanceof Function` still holds
        Object.defineProperty(Function.prototype, "constructor", {value: FunctionRefused});
        var generatorPrototype = Object.getPrototypeOf(function* () {});
        Object.defineProperty(generatorPrototype, "constructor", {value: refusing("GeneratorFunction")});
        Object.defineProperty(globalThis, "Function", {value: FunctionRefused});
        Object.defineProperty(globalThis, "eval", {value: refusing("eval")});
    }

    function freezeReachable(roots) {
        var seen = new WeakSet([globalThis]);
        var pending = roots.slice();
        while (pending.length) {
            var value = pending.pop();
            if ((typeof value !== "object" && typeof value !== "function") || value === null || seen.has(value)) {
                continue;
            }
            seen.add(value);
            Object.freeze(value);
            pending.push(Object.getPrototypeOf(value));
            ownKeys(value).forEach(function (key) {
                var descriptor = describe(value, key);
                pending.push(descriptor.value, descriptor.get, descriptor.set);
            });
        }
    }

    return function hardenKlevuEngine(maxStringChars) {
        guardArrayBuiltins();
        guardStringBuiltins(maxStringChars);
        refuseCodeFromStrings();
        var roots = [Object.getPrototypeOf(globalThis)];
        ownKeys(globalThis).forEach(function (key) {
            var descriptor = describe(globalThis, key);
            roots.push(descriptor.value, descriptor.get, descriptor.set);
            if ("value" in descriptor) {
                descriptor.writable = false;
            }
            descriptor.configurable = false;
            Object.defineProperty(globalThis, key, descriptor);
        });
        freezeReachable(roots);
    };
})();
