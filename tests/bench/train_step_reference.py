"""A PyTorch reference of ldm-worker's DiT training step (issue 27), fed what ldm-worker dumped.

`LDM_DUMP_STEPS=DIR` makes a training stage of ldm-worker write (worker/train/step_dump.h):
  DIR/meta.json             the model shape, the process, the loss, the optimiser and the EMA
  DIR/init.safetensors      the weights before step 1 (the reference implementation's key names)
  DIR/step-NNNNNN.safetensors  x0, t (process time, float64), noise, labels (after label dropout), lr
  DIR/losses.jsonl          ldm-worker's own loss and gradient norm at every dumped step

This script trains an independent DiT (tests/worker/reference/dit_reference.py) the way the DiT
reference trains it (facebookresearch/DiT: GaussianDiffusion with linear betas, ε prediction, learned
range variance, loss = MSE(ε) + VLB with the frozen mean, torch.optim.AdamW, EMA), on the same
inputs from the same weights, and compares its losses with ldm-worker's.

    train_step_reference.py DIR [--steps N] [--device cpu|cuda] [--bf16] [--sdpa] [--fused]
                                [--compile] [--tolerance REL] [--out FILE.json] [--time] [--repeat N]

Exit status 0 when every compared loss agrees within --tolerance (relative; default 1e-3 for fp32),
1 when one does not, 2 on bad input. --time reports the reference's own step time (images/s) instead
of needing agreement (the benchmark's PyTorch eager and compiled columns); --repeat N trains N steps,
the dumped ones first and then the last dumped inputs again (bench_train_device trains on one batch),
comparing losses where ldm-worker has them.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "worker", "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "export"))
import dit_reference  # noqa: E402
import weights_io  # noqa: E402


# ---- DiT's GaussianDiffusion (linear betas, ε, learned range, hybrid loss), in float64 tables ----

class Diffusion:
    def __init__(self, timesteps, beta_start, beta_end):
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        self.T = timesteps
        self.betas = betas
        self.abar = torch.cumprod(1.0 - betas, 0)
        self.abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.abar[:-1]])
        self.post_var = betas * (1.0 - self.abar_prev) / (1.0 - self.abar)
        self.post_log_var_clipped = torch.log(torch.cat([self.post_var[1:2], self.post_var[1:]]))
        self.coef_x0 = betas * self.abar_prev.sqrt() / (1.0 - self.abar)
        self.coef_xt = (1.0 - self.abar_prev) * (1.0 - betas).sqrt() / (1.0 - self.abar)

    @staticmethod
    def take(table, i, like):
        return table.to(like.device)[i].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0, i, noise):
        return self.take(self.abar.sqrt(), i, x0) * x0 + self.take((1.0 - self.abar).sqrt(), i, x0) * noise

    def loss(self, out, x0, x_t, i, noise):
        c = x0.shape[1]
        eps, v = out[:, :c], out[:, c:]
        mse = ((noise - eps) ** 2).mean(dim=list(range(1, x0.dim())))
        # VLB with the mean frozen (DiT: the variance learns only through this term).
        eps_d = eps.detach()
        x0_hat = (x_t - self.take((1.0 - self.abar).sqrt(), i, x_t) * eps_d) / self.take(self.abar.sqrt(), i, x_t)
        true_mean = self.take(self.coef_x0, i, x_t) * x0 + self.take(self.coef_xt, i, x_t) * x_t
        model_mean = self.take(self.coef_x0, i, x_t) * x0_hat + self.take(self.coef_xt, i, x_t) * x_t
        min_log = self.take(self.post_log_var_clipped, i, x_t)
        max_log = self.take(self.betas.log(), i, x_t)
        frac = (v + 1.0) / 2.0
        model_log_var = frac * max_log + (1.0 - frac) * min_log
        kl = 0.5 * (-1.0 + model_log_var - min_log + torch.exp(min_log - model_log_var)
                    + (true_mean - model_mean) ** 2 * torch.exp(-model_log_var))
        kl = kl.flatten(1).mean(1) / math.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_log_var)
        nll = nll.flatten(1).mean(1) / math.log(2.0)
        vb = torch.where(i.to(x0.device) == 0, nll, kl)
        return mse, vb


def approx_standard_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_log_likelihood(x, means, log_scales):
    centered = x - means
    inv_stdv = torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_stdv * (centered + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_stdv * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def sdpa_forward(self, x):
    n, t, d = x.shape
    hd = d // self.heads
    q, k, v = self.qkv(x).view(n, t, 3, self.heads, hd).unbind(dim=2)
    q, k, v = (z.transpose(1, 2) for z in (q, k, v))
    return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, d))


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dump")
    ap.add_argument("--steps", type=int, default=0, help="steps to run (default: every dumped step)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast around the forward")
    ap.add_argument("--sdpa", action="store_true", help="F.scaled_dot_product_attention (PyTorch >= 2)")
    ap.add_argument("--fused", action="store_true", help="AdamW(fused=True)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (PyTorch >= 2)")
    ap.add_argument("--tolerance", type=float, default=1e-3)
    ap.add_argument("--time", action="store_true", help="report images/s; do not require agreement")
    ap.add_argument("--repeat", type=int, default=0, help="train this many steps (dumped inputs reused)")
    ap.add_argument("--out")
    a = ap.parse_args()

    with open(os.path.join(a.dump, "meta.json")) as f:
        meta = json.load(f)
    if meta["family"] != "dit":
        print(f"{a.dump}/meta.json: family '{meta['family']}': this reference trains DiT only", file=sys.stderr)
        return 2
    if meta["process"] != "vp-linear" or meta["objective"] != "eps" or not meta["learn_sigma"]:
        print(f"{a.dump}/meta.json: the reference is DiT's recipe (vp-linear, eps, learn_sigma); got "
              f"{meta['process']}, {meta['objective']}, learn_sigma={meta['learn_sigma']}", file=sys.stderr)
        return 2
    if meta.get("controls", "none") != "none" or meta.get("grad_accumulation", 1) != 1:
        print(f"{a.dump}/meta.json: controls and gradient accumulation are not in the reference", file=sys.stderr)
        return 2
    dev = torch.device(a.device)
    model = dit_reference.ReferenceDiT(in_channels=meta["in_channels"], patch=meta["patch"], width=meta["width"],
                                       depth=meta["depth"], heads=meta["heads"], mlp_ratio=meta["mlp_ratio"],
                                       num_classes=meta["num_classes"], learn_sigma=True,
                                       latent_h=meta["latent_h"], latent_w=meta["latent_w"])
    weights_io.assign(model, weights_io.load_state_dict(os.path.join(a.dump, "init.safetensors")),
                      os.path.join(a.dump, "init.safetensors"))
    if a.sdpa:
        for block in model.blocks:
            block.attn.forward = sdpa_forward.__get__(block.attn)
    model.to(dev).train()
    ema = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    o = meta["optimizer"]
    params = [p for p in model.parameters() if p.requires_grad]
    opt_kwargs = dict(lr=1e-4, betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=o["weight_decay"])
    if a.fused:
        opt_kwargs["fused"] = True
    opt = torch.optim.AdamW(params, **opt_kwargs)
    net = torch.compile(model) if a.compile else model
    diffusion = Diffusion(meta["timesteps"], meta["beta_start"], meta["beta_end"])
    ours = {r["step"]: r for r in read_jsonl(os.path.join(a.dump, "losses.jsonl"))}
    steps = sorted(ours)
    if a.steps:
        steps = steps[: a.steps]
    if not steps:
        print(f"{a.dump}: no dumped steps", file=sys.stderr)
        return 2

    rows, worst, t_start, timed = [], 0.0, None, 0
    schedule = steps + [steps[-1]] * max(0, a.repeat - len(steps))
    loaded = {}
    for k, step in enumerate(schedule):
        if step not in loaded:
            loaded.clear()
            d = weights_io._read_safetensors(os.path.join(a.dump, "step-%06d.safetensors" % step))
            loaded[step] = (d["x0"].to(dev), d["noise"].to(dev), torch.round(d["t"] * (meta["timesteps"] - 1)).long(),
                            d["labels"].to(dev), float(d["lr"].item()))
        x0, noise, i, y, lr = loaded[step]
        if a.time and k == min(2, len(schedule) - 1):  # after warm-up (and compilation)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t_start, timed = time.perf_counter(), 0
        for g in opt.param_groups:
            g["lr"] = lr
        x_t = diffusion.q_sample(x0, i.to(dev), noise)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            out = net(x_t, i.to(dev), y)
        mse, vb = diffusion.loss(out.float(), x0, x_t, i.to(dev), noise)
        loss = (mse + meta["vlb_weight"] * vb).mean()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        if meta["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(params, meta["grad_clip"])
        opt.step()
        with torch.no_grad():
            decay = meta["ema_decay"]
            if meta["ema_warmup"]:
                decay = min(decay, (1.0 + step) / (10.0 + step))
            for name, p in model.named_parameters():
                if name in ema:
                    ema[name].lerp_(p.detach(), 1.0 - decay)
        timed += x0.shape[0]
        if k >= len(steps):  # a repeated step: timing only, no host read
            continue
        ref = loss.item()
        mine = ours[step]["loss"]
        rel = abs(ref - mine) / max(abs(mine), 1e-12)
        worst = max(worst, rel)
        rows.append({"step": step, "reference": ref, "ldm_worker": mine, "rel": rel})
    if dev.type == "cuda":
        torch.cuda.synchronize()
    images_per_s = timed / (time.perf_counter() - t_start) if a.time and t_start else None
    for r in rows[:5] + (rows[-3:] if len(rows) > 8 else []):
        print("step %4d  reference %.6f  ldm-worker %.6f  rel %.2e" % (r["step"], r["reference"], r["ldm_worker"],
                                                                     r["rel"]))
    print("%d steps compared; worst relative difference %.3e (tolerance %.1e)%s"
          % (len(rows), worst, a.tolerance, "; %.1f images/s" % images_per_s if images_per_s else ""))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"steps": rows, "worst_rel": worst, "tolerance": a.tolerance, "images_per_s": images_per_s,
                       "torch": torch.__version__, "device": a.device, "bf16": a.bf16, "sdpa": a.sdpa,
                       "fused": a.fused, "compile": a.compile}, f, indent=1)
    return 0 if a.time or worst <= a.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
