"""The fast generation engine, out of model.py's way.

    kv_cache.py   KVCache, and StaticKVCache for CUDA graphs
    sampling.py   temperature, top-k and top-p
    decode.py     stream and generate_cached (the KV-cache path), GraphedStep (one CUDA graph a step)
"""
