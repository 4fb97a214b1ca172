"""Index the app with azure_functions_runtime's loader, as the platform's worker does at start."""

import os
import sys
import types


class _Holder:
    def __init__(self, **kwargs: object) -> None:
        self.__dict__.update(kwargs)


def _protos() -> types.SimpleNamespace:
    # The host injects these protos into the worker; indexing only needs their shape.
    binding_info = type("BindingInfo", (_Holder,), {})
    binding_info.Direction = types.SimpleNamespace(Value=lambda name: {"in": 0, "out": 1, "inout": 2}[name])
    binding_info.DataType = types.SimpleNamespace(
        Value=lambda name: {"undefined": 0, "string": 1, "binary": 2, "stream": 3}[name]
    )
    for index, name in enumerate(["in_", "out", "inout"]):
        setattr(binding_info, name, index)
    for index, name in enumerate(["undefined", "string", "binary", "stream"]):
        setattr(binding_info, name, index)
    return types.SimpleNamespace(
        BindingInfo=binding_info,
        RpcFunctionMetadata=type("RpcFunctionMetadata", (_Holder,), {}),
        RpcRetryOptions=type("RpcRetryOptions", (_Holder,), {}),
    )


def main(app_dir: str) -> int:
    from azure_functions_runtime import loader
    from azure_functions_runtime.bindings.meta import load_binding_registry
    from azure_functions_runtime.functions import Registry

    app_dir = os.path.abspath(app_dir)
    sys.path.insert(0, app_dir)
    load_binding_registry()
    functions = loader.index_function_app(os.path.join(app_dir, "function_app.py"))
    metadata, _ = loader.process_indexed_function(_protos(), Registry(), functions, app_dir)
    names = sorted(f.get_function_name() for f in functions)
    for function in functions:
        print(f"index-check: {function.get_function_name()}: {function.get_raw_bindings()}")
    print(f"index-check: OK, the real indexer loaded {len(metadata)} functions: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
