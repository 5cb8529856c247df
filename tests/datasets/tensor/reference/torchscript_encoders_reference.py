"""Reference outputs for tests/datasets/tensor/torchscript_encoders_test.cpp.

Usage: /usr/bin/python3 torchscript_encoders_reference.py OUTDIR

Runs tools/export/export_vae.py and export_text_encoder.py with --random to make a tiny VAE and tiny
T5 encoders, trains a tiny SentencePiece model, and saves what the eager (un-scripted) Python models
compute on fixed inputs, for the C++ side to reproduce through the TorchScript files:

  vae.pt                     tiny VAE (seed 1, scaling 0.5, shift 0.1)
  vae_seed2.pt               same configuration, other weights
  vae_images.npy             [5,3,16,16] inputs in [-1,1]
  vae_latents.npy            (encode(images) - shift) * scale
  vae_decoded.npy            decode(latents / scale + shift)
  vae_no_attr.pt             TorchScript without scaling_factor
  vae_bad_shape.pt           TorchScript whose encode returns the wrong shape
  state_dict.pt              a torch.save state dict (not TorchScript)
  tok.model                  SentencePiece model (pad 0, eos 1, unk 2)
  captions.txt               captions, one a line
  text_ids.npy               [n, MAX_TOKENS] ids (SentencePiece ids[:MAX_TOKENS-1] + EOS, pad 0)
  text_lengths.npy           [n]
  t5.pt / t5_features.npy    gated-gelu T5: last hidden state [n, MAX_TOKENS, D] on text_ids
  t5_relu.pt / t5_relu_features.npy   T5 v1.0 (relu)

It also checks the exporters' checkpoint loading: the random VAE's weights renamed to CompVis names
(with the "first_stage_model." prefix, in a .safetensors written here) and to diffusers' old attention
names (.bin), and the T5's in Hugging Face names (.safetensors + config.json), must export to modules
that compute the same outputs; a checkpoint with an unknown key must be refused, naming the key.
"""

import contextlib
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

MAX_TOKENS = 8
VAE_SCALE, VAE_SHIFT = 0.5, 0.1

out = Path(sys.argv[1])
tools = Path(__file__).resolve().parents[4] / "tools" / "export"  # <root>/tests/datasets/tensor/reference/ -> <root>
if not tools.exists() and os.environ.get("LDM_SOURCE_DIR"):
    tools = Path(os.environ["LDM_SOURCE_DIR"]) / "tools" / "export"
if not (tools / "export_vae.py").exists():
    sys.exit(f"export scripts not found under {tools} (set LDM_SOURCE_DIR)")
sys.path.insert(0, str(tools))
import export_text_encoder  # noqa: E402
import export_vae  # noqa: E402

torch.set_num_threads(1)


MODULES = {"export_vae.py": export_vae, "export_text_encoder.py": export_text_encoder}


def run(script, *args, expect_ok=True, subprocess_=False):
    """Runs an export script: in a subprocess (the command line as users run it), or, to keep the
    fixture fast, its main() in this process. Returns (exit code, captured stderr)."""
    argv = list(map(str, args))
    print("$", script, " ".join(argv))
    if subprocess_:
        p = subprocess.run([sys.executable, str(tools / script), *argv], capture_output=True, text=True)
        code, err = p.returncode, p.stderr
        print(p.stdout, end="")
    else:
        buf = io.StringIO()
        with contextlib.redirect_stderr(buf):
            code = MODULES[script].main(argv)
        err = buf.getvalue()
    print(err, end="")
    print("->", code)
    if expect_ok and code != 0:
        sys.exit(f"{script} failed")
    if not expect_ok and code == 0:
        sys.exit(f"{script} should have failed")
    return code, err


def save(name, t):
    np.save(out / name, t.detach().cpu().numpy() if torch.is_tensor(t) else t)


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for k, v in tensors.items():
        b = v.detach().contiguous().float().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- VAE -------------------------------------------------------------------------------------
vae_args = ["--random", "--seed", "1", "--scaling-factor", VAE_SCALE, "--shift-factor", VAE_SHIFT]
run("export_vae.py", *vae_args, "--out", out / "vae.pt", "--check", subprocess_=True)
run("export_vae.py", "--random", "--seed", "2", "--scaling-factor", VAE_SCALE, "--shift-factor", VAE_SHIFT,
    "--out", out / "vae_seed2.pt")
vae, _ = export_vae.build(export_vae.parse_args([*map(str, vae_args), "--out", "unused"]))
g = torch.Generator().manual_seed(7)
images = torch.rand(5, 3, 16, 16, generator=g) * 2 - 1
with torch.no_grad():
    latents = (vae.encode(images) - VAE_SHIFT) * VAE_SCALE
    decoded = vae.decode(latents / VAE_SCALE + VAE_SHIFT)
assert latents.shape == (5, 4, 8, 8), latents.shape
save("vae_images.npy", images)
save("vae_latents.npy", latents)
save("vae_decoded.npy", decoded)


def to_compvis(key, levels):
    """Our (diffusers) key -> CompVis/LDM key, written out independently of export_vae's mapping."""
    p = key.split(".")
    if key.startswith("encoder.down_blocks."):
        i = p[2]
        if p[3] == "resnets":
            rest = ".".join(p[5:]).replace("conv_shortcut.0", "nin_shortcut")
            return f"encoder.down.{i}.block.{p[4]}.{rest}"
        return f"encoder.down.{i}.downsample.conv.{p[-1]}"
    if key.startswith("decoder.up_blocks."):
        i = levels - 1 - int(p[2])
        if p[3] == "resnets":
            rest = ".".join(p[5:]).replace("conv_shortcut.0", "nin_shortcut")
            return f"decoder.up.{i}.block.{p[4]}.{rest}"
        return f"decoder.up.{i}.upsample.conv.{p[-1]}"
    if ".mid_block.resnets." in key:
        blk = "block_1" if p[3] == "0" else "block_2"
        return f"{p[0]}.mid.{blk}.{'.'.join(p[4:])}"
    if ".mid_block.attentions.0." in key:
        names = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}
        return f"{p[0]}.mid.attn_1.{names[p[4]]}.{p[-1]}"
    if ".conv_norm_out." in key:
        return key.replace("conv_norm_out", "norm_out")
    if key.startswith("quant_conv.0.") or key.startswith("post_quant_conv.0."):
        return key.replace(".0.", ".")
    return key


sd = vae.state_dict()
compvis = {}
for k, v in sd.items():
    ck = to_compvis(k, 2)
    if ".mid.attn_1." in ck and ck.endswith(".weight") and v.dim() == 2:
        v = v[:, :, None, None]  # CompVis attention projections are 1x1 convs
    compvis["first_stage_model." + ck] = v
compvis["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(1)  # ignored: other SD parts
write_safetensors(out / "vae_compvis.safetensors", compvis)
old = {}
for k, v in sd.items():
    k = k.replace("conv_shortcut.0.", "conv_shortcut.").replace("quant_conv.0.", "quant_conv.")
    for new_name, old_name in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")):
        k = k.replace(f"attentions.0.{new_name}.", f"attentions.0.{old_name}.")
    old[k] = v
old["loss.logvar"] = torch.zeros(())  # training-only, skipped
torch.save(old, out / "vae_diffusers_old.bin")
for src in ("vae_compvis.safetensors", "vae_diffusers_old.bin"):
    dst = out / (src.split(".")[0] + "_export.pt")
    run("export_vae.py", "--weights", out / src, "--ch", 32, "--ch-mult", "1,2", "--num-res-blocks", 1,
        "--scaling-factor", VAE_SCALE, "--shift-factor", VAE_SHIFT, "--out", dst)
    m = torch.jit.load(str(dst))
    with torch.no_grad():
        err = max((m.encode(images) - vae.encode(images)).abs().max().item(),
                  (m.decode(latents) - vae.decode(latents)).abs().max().item())
    print(f"{src}: max diff {err}")
    if err > 1e-6:
        sys.exit(f"export from {src} does not reproduce the model (max diff {err})")
bad = dict(old)
bad["encoder.mystery.weight"] = torch.zeros(3)
del bad["decoder.conv_out.bias"]
torch.save(bad, out / "vae_bad.bin")
_, err = run("export_vae.py", "--weights", out / "vae_bad.bin", "--ch", 32, "--ch-mult", "1,2", "--num-res-blocks", 1,
             "--out", out / "unused.pt", expect_ok=False)
if "encoder.mystery.weight" not in err or "decoder.conv_out.bias" not in err:
    sys.exit("export_vae.py did not name the unknown and missing keys")
for f in ("vae_compvis.safetensors", "vae_diffusers_old.bin", "vae_bad.bin", "vae_compvis_export.pt",
          "vae_diffusers_old_export.pt"):
    (out / f).unlink()


class NoAttr(torch.nn.Module):
    latent_channels: int
    downsampling_factor: int

    def __init__(self):
        super().__init__()
        self.latent_channels = 4
        self.downsampling_factor = 2

    @torch.jit.export
    def encode(self, x):
        return x[:, :1]

    @torch.jit.export
    def decode(self, z):
        return z

    def forward(self, x):
        return x


class BadShape(NoAttr):
    scaling_factor: float
    shift_factor: float

    def __init__(self):
        super().__init__()
        self.scaling_factor = 1.0
        self.shift_factor = 0.0

    @torch.jit.export
    def encode(self, x):
        return x  # [N,3,H,W], not [N,4,H/2,W/2]


torch.jit.script(NoAttr()).save(str(out / "vae_no_attr.pt"))
torch.jit.script(BadShape()).save(str(out / "vae_bad_shape.pt"))
torch.save({"w": torch.zeros(2)}, out / "state_dict.pt")

# ---- tokenizer --------------------------------------------------------------------------------
corpus = [
    "a photo of a cat sitting on a red sofa",
    "a dog running across a green field at sunset",
    "an oil painting of a lighthouse on a rocky coast",
    "two people riding bicycles through a busy city street",
    "a bowl of fresh fruit on a wooden kitchen table",
    "the quick brown fox jumps over the lazy dog",
    "a small boat floating on a calm blue lake",
    "a castle on a hill under a starry night sky",
]
(out / "corpus.txt").write_text("\n".join(corpus * 4) + "\n")
run("export_text_encoder.py", "--train-tokenizer", out / "corpus.txt", "--vocab", 64,
    "--out-tokenizer", out / "tok.model")
import sentencepiece as spm  # noqa: E402

sp = spm.SentencePieceProcessor(model_file=str(out / "tok.model"))
assert sp.eos_id() == 1 and sp.pad_id() == 0, (sp.eos_id(), sp.pad_id())
captions = [
    "a cat",
    "a red boat on a calm lake at sunset",  # longer than MAX_TOKENS-1 pieces: truncated
    "",
    "zebra xylophone quartz",  # unseen letters: unk pieces
    "the lighthouse",
    "A Dog!",
]
(out / "captions.txt").write_text("\n".join(captions) + "\n")
ids = torch.zeros(len(captions), MAX_TOKENS, dtype=torch.long)  # pad id 0
mask = torch.zeros(len(captions), MAX_TOKENS, dtype=torch.long)
lengths = []
for i, c in enumerate(captions):
    t = sp.encode(c)[: MAX_TOKENS - 1] + [sp.eos_id()]
    ids[i, : len(t)] = torch.tensor(t)
    mask[i, : len(t)] = 1
    lengths.append(len(t))
    print(repr(c), "->", t)
assert max(len(sp.encode(c)) for c in captions) > MAX_TOKENS - 1, "no caption exercises truncation"
save("text_ids.npy", ids)
save("text_lengths.npy", np.array(lengths, dtype=np.int64))

# ---- T5 --------------------------------------------------------------------------------------
vocab = sp.get_piece_size()
for name, extra in (("t5", []), ("t5_relu", ["--feed-forward", "relu"])):
    args = ["--random", "--seed", "3", "--vocab-size", str(vocab), *extra]
    run("export_text_encoder.py", *args, "--out", out / f"{name}.pt", "--check")
    model, cfg = export_text_encoder.build(export_text_encoder.parse_args([*args, "--out", "unused"]))
    with torch.no_grad():
        feats = model(ids, mask)
    save(f"{name}_features.npy", feats)
    if name == "t5":
        # Hugging Face names (T5ForConditionalGeneration-like: decoder keys are skipped).
        hf = {"shared.weight": model.embed.weight, "encoder.embed_tokens.weight": model.embed.weight,
              "encoder.final_layer_norm.weight": model.final_norm.weight,
              "decoder.final_layer_norm.weight": torch.ones(cfg.d_model), "lm_head.weight": model.embed.weight,
              "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": model.rel_bias.weight}
        for i, b in enumerate(model.blocks):
            pre = f"encoder.block.{i}.layer."
            for w in "qkvo":
                hf[f"{pre}0.SelfAttention.{w}.weight"] = getattr(b, w).weight
            hf[f"{pre}0.layer_norm.weight"] = b.attn_norm.weight
            hf[f"{pre}1.layer_norm.weight"] = b.ff_norm.weight
            for w in ("wi_0", "wi_1", "wo"):
                hf[f"{pre}1.DenseReluDense.{w}.weight"] = getattr(b.ff, w).weight
        write_safetensors(out / "t5_hf.safetensors", hf)
        (out / "t5_config.json").write_text(json.dumps({
            "vocab_size": vocab, "d_model": cfg.d_model, "d_kv": cfg.d_kv, "d_ff": cfg.d_ff,
            "num_layers": cfg.num_layers, "num_heads": cfg.num_heads, "relative_attention_num_buckets": 32,
            "relative_attention_max_distance": 128, "layer_norm_epsilon": 1e-6,
            "feed_forward_proj": "gated-gelu"}))
        run("export_text_encoder.py", "--weights", out / "t5_hf.safetensors", "--config", out / "t5_config.json",
            "--out", out / "t5_hf.pt")
        with torch.no_grad():
            err = (torch.jit.load(str(out / "t5_hf.pt"))(ids, mask) - feats).abs().max().item()
        print(f"t5 from Hugging Face names: max diff {err}")
        if err > 1e-6:
            sys.exit(f"export from Hugging Face names does not reproduce the model (max diff {err})")
        for f in ("t5_hf.safetensors", "t5_config.json", "t5_hf.pt"):
            (out / f).unlink()
print("reference: ok")
