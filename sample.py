"""Generate text from a trained checkpoint.

    python sample.py                                   # 3 samples from out/best.pt
    python sample.py --prompt "ROMEO:" --num_samples 1 --max_new_tokens 1000
    python sample.py --prompt_file YOUR_TEXT.txt --temperature 0   # greedy: always the likeliest

The checkpoint carries the model config, the weights and the vocabulary, so this
needs nothing else: not the data directory, not the training flags. Generation uses
a KV cache (engine/decode.py's stream): the same text as model.py's simple generate (to float
rounding) while prompt and text fit in block_size. Past that (the model knows block_size positions only), generate
reads the last block_size characters at every step; stream, each time its cache is full, empties it,
reads the last block_size/2 characters again, and fills it one character at a time, so each new
character sees between half a window and a whole one. On a CUDA GPU each of its steps is one replay
of a recorded CUDA graph (--cuda_graph false: not). Before it samples, it checks that the cache gives the plain
forward's logits over one window: a change to model.py that the cache does not follow is refused.
--no_cache uses generate instead. A single sample (with the cache) is printed as it is generated.
"""

import sys

import torch

from engine.decode import cache_gap, generate_cached, stream
from machinery.checkpoint import load_model, what_is_sampled
from machinery.cli import ArgumentParser, HelpFormatter, dtype_name, parse_bool, parse_seed, pick_device, run_cli
from machinery.data import read_prompt_file
from machinery.settings import check_sample_flags, check_samples_fit, check_the_cache, note_a_greedy_start, pick_dtype
from prepare import decode, encode, start_char


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0],
                            formatter_class=HelpFormatter)
    parser.add_argument("--out_dir", help="the training run to sample from (default: out; uses its best.pt, "
                        "or latest.pt before there is a best)")
    parser.add_argument("--checkpoint", help="a checkpoint file (or a run's folder) to use instead of <out_dir>")
    parser.add_argument("--prompt", help="text to continue (default, or when empty: a newline, or the "
                        "vocabulary's first character if the text had no newline)")
    parser.add_argument("--prompt_file", help="read the prompt from this UTF-8 file instead")
    parser.add_argument("--num_samples", type=int, default=3, help="how many samples, generated as one batch")
    parser.add_argument("--max_new_tokens", type=int, default=500, help="characters to generate per sample")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="below 1 is more conservative, above 1 more adventurous, 0 always takes the likeliest "
                        "(which can loop, as newline after newline: then give it a --prompt)")
    parser.add_argument("--top_k", type=int, default=None, help="sample only from the k likeliest characters")
    parser.add_argument("--top_p", type=float, default=None,
                        help="sample only from the likeliest characters that together have probability p")
    parser.add_argument("--seed", type=parse_seed, default=1337,
                        help="the same seed (and --num_samples: a batch draws together) gives the same samples")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--dtype", default="float32", help="the weights' dtype while sampling: float32 (as trained), "
                        "bfloat16 (half the bytes a step reads: faster for a large model on some CPUs, slower on "
                        "others and for a small one, docs/sampling.md; the text differs by rounding), "
                        "float16, or auto (as train.py picks it)")
    parser.add_argument("--no_cache", action="store_true",
                        help="use the simple generate, which reruns the whole context per character (slow)")
    parser.add_argument("--cuda_graph", type=parse_bool, default=None,
                        help="replay each step of the KV-cache path as one recorded CUDA graph (default: on CUDA)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    check_sample_flags(args)  # values and pairs of flags that cannot work, refused with what to do
    device = pick_device(args.device)
    prompt = read_prompt_file(args.prompt_file) if args.prompt_file is not None else args.prompt
    dtype = pick_dtype(args.dtype, device)  # auto: bf16 on a GPU (fp16 on an older one), float32 on a CPU
    # the checkpoint's GPTConfig builds the model (model.py's build_model), then its weights go in (machinery/)
    model, ckpt, path = load_model(args.checkpoint, args.out_dir)
    chars = ckpt["vocab"]["chars"]
    start = start_char(chars)  # a newline, where the text has one (prepare.py)
    prompt = prompt or start  # the model needs at least one character to start from
    prompt_ids = encode(prompt, chars)
    # refuse a --num_samples whose KV caches and activations would not fit in memory, before allocating any
    check_samples_fit(model.config, args, len(prompt_ids) + args.max_new_tokens, dtype, device)
    note_a_greedy_start(args, prompt, start, chars)  # --temperature 0 from a newline: newline after newline

    model.eval()  # dropout off
    # the cache's logits against a plain forward's, on the CPU in float32 (before the cast below, whose rounding would
    # blur the comparison): a change to model.py that the cache misses is refused (machinery/settings.py)
    if not args.no_cache:
        check_the_cache(cache_gap(model))
    model = model.to(device, dtype)
    idx = torch.tensor([prompt_ids] * args.num_samples, dtype=torch.long, device=device)  # (B, T), B = num_samples
    options = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   generator=torch.Generator(device).manual_seed(args.seed))
    cuda_graph = device.type == "cuda" if args.cuda_graph is None else args.cuda_graph
    in_dtype = f", weights in {dtype_name(dtype)}" if dtype != torch.float32 else ""
    print(what_is_sampled(path, ckpt) + in_dtype, file=sys.stderr)  # on stderr: stdout gets the samples (and headers)

    if args.num_samples == 1 and not args.no_cache:  # stream: print each character as it comes
        print("---------------- sample 1 of 1 ----------------")
        print(prompt, end="", flush=True)
        try:
            for column in stream(model, idx, args.max_new_tokens, cuda_graph=cuda_graph, **options):  # column: (1,)
                print(decode(column.tolist(), chars), end="", flush=True)
        finally:  # the text's last line ended, at a Ctrl-C too (its "interrupted" then starts a line of its own)
            print()
        return 0
    if args.no_cache:  # model.py's simple generate: no top-p (--top_p with --no_cache was refused above)
        options.pop("top_p")
        out = model.generate(idx, args.max_new_tokens, **options)  # (B, T + max_new_tokens)
    else:
        out = generate_cached(model, idx, args.max_new_tokens, cuda_graph=cuda_graph, **options)
    for i, row in enumerate(out.tolist()):
        print(f"---------------- sample {i + 1} of {args.num_samples} ----------------")
        print(decode(row, chars))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a UserError: one line, `error: ...`, and exit code 2 (machinery/cli.py)
