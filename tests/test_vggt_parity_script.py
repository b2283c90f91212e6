"""The user-facing parity script (``python -m geovr.extract.teachers.vggt.parity``) on a stand-in reference.

The real check needs a checkout of the official code and the 1B checkpoint (docs/vggt.md). Here a generated
``vggt`` package exposes geovr's own modules under the official import path and call signatures, so the
script's plumbing is exercised for real: importing from ``--reference-code``, loading the same weights into
both, comparing every output, and the exit code. A stand-in whose camera head is off by 1e-3 must fail.
"""

import sys
from pathlib import Path

import pytest

from geovr.extract.teachers.vggt import parity

DATA = Path(__file__).parent / "data" / "vggt"

STANDIN = '''
import json
import torch
from geovr.extract.teachers.vggt import model as m

CFG = m.VGGTConfig(**json.loads({cfg!r})["config"])


class Aggregator(m.Aggregator):
    def forward(self, images):
        out = super().forward(images, set(range(CFG.depth)))
        return [out[i] for i in range(CFG.depth)], self.patch_start_idx


class CameraHead(m.CameraHead):
    def forward(self, tokens_list):
        return [super().forward(tokens_list[-1][:, :, 0]) + {bias}]


class DPTHead(m.DPTHead):
    def forward(self, tokens_list, images, patch_start_idx):
        depth, conf = super().forward(dict(enumerate(tokens_list)), images, patch_start_idx)
        return depth[..., None], conf


class VGGT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.aggregator = Aggregator(CFG)
        self.camera_head = CameraHead(2 * CFG.embed_dim, CFG.camera_trunk_depth, CFG.camera_heads)
        self.depth_head = DPTHead(2 * CFG.embed_dim, CFG.dpt_features, CFG.dpt_out_channels, CFG.dpt_layers,
                                  CFG.patch_size)
'''


def _standin(root: Path, bias: float) -> Path:
    pkg = root / "vggt" / "models"
    pkg.mkdir(parents=True)
    (root / "vggt" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "vggt.py").write_text(STANDIN.format(cfg=(DATA / "config.json").read_text(), bias=bias))
    return root


@pytest.fixture
def clean_imports(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [n for n in sys.modules if n == "vggt" or n.startswith("vggt.")]:
        del sys.modules[name]


@pytest.mark.parametrize("bias,code", [(0.0, 0), (1e-3, 1)])
def test_parity_script_reports_every_output_and_fails_on_a_difference(tmp_path, capsys, clean_imports, bias, code):
    ref = _standin(tmp_path / "ref", bias)
    rc = parity.main(["--reference-code", str(ref), "--weights", str(DATA / "weights.safetensors"), "--config",
                      str(DATA / "config.json"), "--size", "70", "126"])
    out = capsys.readouterr().out
    assert rc == code, out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:-1]}
    assert set(rows) == {"pose_enc", "depth", "depth_conf", "layer1", "layer2", "layer4", "layer5"}
    assert float(rows["pose_enc"][1]) == pytest.approx(bias, rel=1e-3, abs=0)
    assert all(float(r[1]) == 0.0 for k, r in rows.items() if k != "pose_enc")  # same code, same weights


def test_parity_script_refuses_a_folder_without_the_package(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        parity.main(["--reference-code", str(tmp_path), "--weights", "w.pt"])
    assert e.value.code == 2 and capsys.readouterr().err.startswith("error: ")
