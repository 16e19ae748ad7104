#!/usr/bin/python3
"""Train torchvision's MobileNetV2 on a synthetic but learnable 10-class image task, for the static
int8 benchmark (npm run bench:quantize-static).

Why: the models in ../shared are random-weight (no model hub here); their top-1 decisions on noise
inputs are fragile (rounding only the weights to 12 bits already changes 2-7% of them), so top-1
agreement there measures the model, not the quantizer. A trained model has real decision margins.

Task: oriented sinusoidal gratings. Class c has orientation c * 18 degrees; frequency, phase,
contrast, colour mixing and additive noise are random per image, so the network must learn
orientation, not memorise images. Inputs are roughly N(0, 1) per channel, like normalised photos.

Writes OUT/model.onnx (opset 13, dynamic batch), OUT/calibration/test_data_set_{0..31},
OUT/eval/test_data_set_{0..255} (input_0.pb, batch 1) and OUT/labels.json (eval labels).
Usage: /usr/bin/python3 bench/make-trained-cnn.py OUT [--steps N] [--size 224]
Needs Debian's python3-torch, python3-torchvision and python3-onnx (never a test dependency).
"""
import argparse
import json
import math
import os
import time

import torch
import torchvision
from onnx import numpy_helper

CLASSES = 10


def batch(n, size, gen):
    """n images [n, 3, size, size] and labels [n]."""
    labels = torch.randint(0, CLASSES, (n,), generator=gen)
    theta = labels.float() * math.pi / CLASSES + (torch.rand(n, generator=gen) - 0.5) * 0.1
    freq = 3 + 5 * torch.rand(n, generator=gen)  # cycles per image
    phase = 2 * math.pi * torch.rand(n, generator=gen)
    contrast = 0.5 + torch.rand(n, generator=gen)
    coords = torch.linspace(-0.5, 0.5, size)
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    proj = x[None] * torch.cos(theta)[:, None, None] + y[None] * torch.sin(theta)[:, None, None]
    wave = torch.sin(2 * math.pi * freq[:, None, None] * proj + phase[:, None, None]) * contrast[:, None, None]
    mix = 0.5 + torch.rand(n, 3, generator=gen)  # per-image colour
    img = wave[:, None] * mix[:, :, None, None] + 0.6 * torch.randn(n, 3, size, size, generator=gen)
    return img, labels


def save_set(folder, x):
    os.makedirs(folder, exist_ok=True)
    t = numpy_helper.from_array(x.numpy(), "input")
    with open(os.path.join(folder, "input_0.pb"), "wb") as f:
        f.write(t.SerializeToString())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = torchvision.models.mobilenet_v2(num_classes=CLASSES)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.steps)
    model.train()
    t0 = time.time()
    for step in range(args.steps):
        x, y = batch(32, args.size, gen)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 25 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    model.eval()
    eval_gen = torch.Generator().manual_seed(2)
    xs, ys = batch(256, args.size, eval_gen)
    with torch.no_grad():
        acc = (model(xs).argmax(1) == ys).float().mean().item()
    print(f"fp32 accuracy on 256 held-out images: {acc:.4f}")
    os.makedirs(args.out, exist_ok=True)
    torch.onnx.export(model, xs[:1], os.path.join(args.out, "model.onnx"), opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    for i in range(256):
        save_set(os.path.join(args.out, "eval", f"test_data_set_{i}"), xs[i:i + 1])
    cal_gen = torch.Generator().manual_seed(3)
    cx, _ = batch(32, args.size, cal_gen)
    for i in range(32):
        save_set(os.path.join(args.out, "calibration", f"test_data_set_{i}"), cx[i:i + 1])
    with open(os.path.join(args.out, "labels.json"), "w") as f:
        json.dump({"labels": ys.tolist(), "fp32_accuracy_torch": acc, "steps": args.steps, "size": args.size}, f)


if __name__ == "__main__":
    main()
