"""The fast generation engine, out of model.py's way.

    kv_cache.py   KVCache: the keys and values kept
    sampling.py   temperature, top-k and top-p
    decode.py     stream and generate_cached: the KV-cache path
    cuda_graph.py StaticKVCache and GraphedStep: that path's step as one CUDA graph (skip it on a first read)
"""
