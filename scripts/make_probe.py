"""Make the bundled example probe `is_red` (`curate/assets/probes/is_red.{json,safetensors}`).

    .venv/bin/python scripts/make_probe.py --out curate/assets/probes --n 2000 --seed 0

A logistic regression (scikit-learn) on the bundled tiny model's image embeddings of rendered shapes
(curate/demo/shapes.py), labelled 1 when the shape is red: the same recipe as LAION's CLIP-embedding
classifiers, at toy scale. Saved as one linear layer (`0.weight`, `0.bias`) with a sigmoid, and a JSON
spec; it prints the held-out accuracy. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from sklearn.linear_model import LogisticRegression

from curate.demo.shapes import random_scene, render
from curate.models.clip import ClipScorer


def embeddings(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = random.Random(seed)
    scorer = ClipScorer("tiny").load()
    images, labels = [], []
    for _ in range(n):
        scene = random_scene(rng)
        buf = io.BytesIO()
        render(scene, rng.randint(64, 320), rng.randint(64, 320), rng).save(buf, format="JPEG", quality=90)
        images.append(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        labels.append(scene.color == "red")
    return scorer.embed_images(images), np.array(labels, dtype=np.int64)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="curate/assets/probes")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    x, y = embeddings(args.n, args.seed)
    cut = int(0.8 * len(y))
    clf = LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced").fit(x[:cut], y[:cut])
    acc = float((clf.predict(x[cut:]) == y[cut:]).mean())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({"0.weight": torch.tensor(clf.coef_, dtype=torch.float32),
               "0.bias": torch.tensor(clf.intercept_, dtype=torch.float32)}, str(out / "is_red.safetensors"))
    spec = {"name": "is_red", "model": "tiny", "input": "image", "layers": [x.shape[1], 1],
            "hidden_activation": "none", "activation": "sigmoid", "weights": "is_red.safetensors",
            "description": f"P(the shape is red) from the tiny model's image embedding; logistic regression on "
                           f"{cut} rendered shapes (scripts/make_probe.py --n {args.n} --seed {args.seed}), "
                           f"held-out accuracy {acc:.3f} on {len(y) - cut}"}
    (out / "is_red.json").write_text(json.dumps(spec, indent=2) + "\n")
    print(f"is_red: held-out accuracy {acc:.3f} on {len(y) - cut} images; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
