// Makes the engine's shared state immutable before any template runs, so that each render
// depends only on its template and data, and so that the engine's time limit can stop it.
//
// 1. Array built-ins refuse more than MAX_NATIVE_LENGTH elements. The engine checks its time
//    limit between JavaScript instructions, not inside a built-in's own loop: on a sparse or
//    array-like `length` near 2**53, `Array(2**32 - 1).join()` or
//    `[].indexOf.call({length: 2**53})` would loop for hours without allocating (so without
//    meeting the memory limit either). A banner has a dozen products.
// 2. Every built-in reachable from the global object is frozen and every existing global is
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

    return function hardenKlevuEngine() {
        guardArrayBuiltins();
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
