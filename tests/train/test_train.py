"""train: tiny synthetic cohorts (bright blocks = vertebral bodies) and tiny networks."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from vertebrafat.cli import main
from vertebrafat.core.model_card import ModelCard
from vertebrafat.segmentation.inference import predict
from vertebrafat.train.augment import AugmentConfig
from vertebrafat.train.dataset import (
    BACKGROUND_OR_RIB,
    RIB_CLASS,
    CachedSlices,
    cache_subject,
    known_mask,
    load_subject,
    split_subjects,
)
from vertebrafat.train.export import max_onnx_difference, onnx_bytes
from vertebrafat.train.fingerprint import stale_reason
from vertebrafat.train.loop import TrainOptions, masked_loss, train_network, validation_scores
from vertebrafat.train.network import UNet, gflops_per_slice
from vertebrafat.train.recipe import revalidate
from vertebrafat.workflows.loading import load_model

SPACING = 1.25
AFFINE = np.array(
    [[-SPACING, 0, 0, 0.0], [0, 0, -SPACING, 0.0], [0, -SPACING, 0, 0.0], [0, 0, 0, 1]]
)
CARD = ModelCard(
    name="tiny",
    channels=("water", "fat"),
    optional_channels=("fat",),
    classes=("background", "vertebral_body", "sacrum"),
    pixel_spacing_mm=SPACING,
)


def write_subject(folder: Path, *, seed: int, sacrum: bool = False) -> None:
    """(6, 64, 32) subject: five 8-row bodies L1..L5 (+ sacrum 26) of water 1 on water 0.3."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((6, 64, 32), dtype=np.uint8)
    for i, label in enumerate((20, 21, 22, 23, 24, 26) if sacrum else (20, 21, 22, 23, 24)):
        labels[1:5, 4 + 10 * i : 12 + 10 * i, 8:24] = label
    water = np.where(labels > 0, 1.0, 0.3) + rng.normal(0, 0.05, labels.shape)
    folder.mkdir(parents=True)
    for name, arr in (("water", water), ("fat", 1.2 - water), ("labels", labels)):
        nib.save(
            nib.Nifti1Image(arr.astype(np.float32 if name != "labels" else np.uint8), AFFINE),
            str(folder / f"{name}.nii.gz"),
        )


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    for i in range(3):
        write_subject(root / f"s{i}", seed=i, sacrum=i == 1)
    return root


def tiny_net() -> UNet:
    torch.manual_seed(0)
    return UNet(CARD.n_planes, 3, features=(4, 8), dropout=(0.0, 0.0))


def test_gflops_of_a_two_level_net_by_hand() -> None:
    net = UNet(1, 1, features=(2, 4), dropout=(0.0, 0.0), batch_norm=False)
    # convs 2304+4608 (level 1) + 2304+4608 (level 2) + up-conv 1024 + 9216+4608 + head 256
    assert gflops_per_slice(net, height=8, width=8) == pytest.approx(28928e-9)


def test_unet_keeps_spatial_shape() -> None:
    assert tiny_net()(torch.zeros(2, 3, 32, 48)).shape == (2, 3, 32, 48)


def test_masked_loss_ignores_unknown_pixels() -> None:
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    known = torch.zeros(2, 8, 8, dtype=torch.bool)
    known[:, :4] = True
    changed = target.clone()
    changed[:, 4:] = (changed[:, 4:] + 1) % 3
    assert float(masked_loss(logits, target, known)) == float(masked_loss(logits, changed, known))
    assert float(masked_loss(logits, target, ~known)) != float(masked_loss(logits, changed, ~known))


def test_background_or_rib_takes_the_two_classes_together() -> None:
    """Where rib truth is missing, putting the mass on background or on rib costs the same
    (-log(p_bg + p_rib)); plain background targets charge the rib mass."""
    known = torch.ones(1, 4, 4, dtype=torch.bool)
    on_bg = torch.tensor([6.0, -6.0, -6.0, -6.0]).view(1, 4, 1, 1).expand(1, 4, 4, 4)
    on_rib = torch.tensor([-6.0, -6.0, -6.0, 6.0]).view(1, 4, 1, 1).expand(1, 4, 4, 4)
    either = torch.full((1, 4, 4), BACKGROUND_OR_RIB, dtype=torch.long)
    background = torch.zeros((1, 4, 4), dtype=torch.long)
    assert float(masked_loss(on_bg, either, known)) == pytest.approx(
        float(masked_loss(on_rib, either, known)), abs=1e-6
    )
    gap = float(masked_loss(on_rib, background, known)) - float(
        masked_loss(on_bg, background, known)
    )
    # cross-entropy: -log p_bg = 12 + log(1 + 3 e^-12) vs log(1 + 3 e^-12); no foreground
    # class in the truth, so no Dice term
    assert gap == pytest.approx(12.0, abs=1e-4)


def test_dice_counts_only_classes_present_in_the_truth() -> None:
    """A batch without sacrum truth: putting probability on the sacrum costs cross-entropy
    only, not the (smoothed) sacrum Dice."""
    known = torch.ones(1, 2, 2, dtype=torch.bool)
    target = torch.tensor([[[1, 0], [0, 0]]])
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1, 0, 0] = 20.0  # the body pixel is body
    logits[0, 0, 0, 1] = logits[0, 0, 1, 0] = 20.0  # two background pixels are background
    logits[0, 2, 1, 1] = 20.0  # the last background pixel is called sacrum
    loss = float(masked_loss(logits, target, known))
    # CE: 20 nats on one of 4 pixels; body Dice (2 * 1 + 1) / (2 + 1) = 1
    assert loss == pytest.approx(20.0 / 4, abs=1e-4)


class _FixedLogits(torch.nn.Module):
    """A 'network' whose logits put class ``answer[r, c]`` first at every pixel."""

    def __init__(self, answer: np.ndarray, n_classes: int) -> None:
        super().__init__()
        self.answer = torch.from_numpy(answer).long()
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        onehot = torch.nn.functional.one_hot(self.answer, self.n_classes).permute(2, 0, 1)
        return (10.0 * onehot.float()).unsqueeze(0).expand(x.shape[0], -1, -1, -1)


def test_validation_scores_give_body_and_rib_dice() -> None:
    target = np.zeros((1, 16, 16), dtype=np.uint8)
    target[0, 2:6, 2:6] = 1  # 16 body pixels
    target[0, 10:12, 10:12] = RIB_CLASS  # 4 rib pixels
    answer = target[0].copy()
    answer[10:12, 12:14] = RIB_CLASS  # 4 false rib pixels: rib Dice 2 * 4 / (8 + 4)
    data = [CachedSlices("s", "d", np.zeros((1, 1, 16, 16), np.float32), target,
                         np.ones((1, 16, 16), dtype=bool))]
    body, rib = validation_scores(_FixedLogits(answer, 4), data)  # type: ignore[arg-type]
    assert body == 1.0
    assert rib == pytest.approx(8 / 12)
    no_rib_class = np.where(answer == RIB_CLASS, 0, answer)
    assert validation_scores(_FixedLogits(no_rib_class, 3), data)[1] is None  # type: ignore[arg-type]


def test_rib_targets_come_from_ribs_nii_or_are_background_or_rib(tmp_path: Path) -> None:
    write_subject(tmp_path / "a", seed=6)
    ribs = np.zeros((6, 64, 32), dtype=np.uint8)
    ribs[0, 4:8, 20:24] = 1
    nib.save(nib.Nifti1Image(ribs, AFFINE), str(tmp_path / "a" / "ribs.nii.gz"))
    card = ModelCard(
        name="tiny",
        channels=("water",),
        optional_channels=(),
        classes=("background", "vertebral_body", "sacrum", "rib"),
        pixel_spacing_mm=SPACING,
    )
    with_ribs = cache_subject(load_subject(tmp_path / "a"), card)
    assert int((with_ribs.target == RIB_CLASS).sum()) == 16
    assert int((with_ribs.target == BACKGROUND_OR_RIB).sum()) == 0
    (tmp_path / "a" / "ribs.nii.gz").unlink()
    without = cache_subject(load_subject(tmp_path / "a"), card)
    assert int((without.target == RIB_CLASS).sum()) == 0
    assert int((without.target == BACKGROUND_OR_RIB).sum()) == 6 * 64 * 32 - 4 * 5 * 8 * 16


def test_split_takes_every_fifth_subject_from_index_two(tmp_path: Path) -> None:
    folders = [tmp_path / "d" / f"s{i:02d}" for i in range(10)]
    train, val = split_subjects(folders)
    assert [f.name for f in val] == ["s02", "s07"]
    assert len(train) == 8
    # the five folds (--fold 0-4) hold out every subject exactly once
    held = [f.name for k in range(5) for f in split_subjects(folders, offset=k)[1]]
    assert sorted(held) == [f.name for f in folders]
    assert [f.name for f in split_subjects(folders, offset=4)[1]] == ["s04", "s09"]


def test_split_keeps_the_scans_of_one_subject_together(tmp_path: Path) -> None:
    import json

    names = ["P001", "P002", "P002-scan2", "P003", "P003-scan2", "P004", "P005"]
    folders = []
    for name in names:
        folder = tmp_path / "ph" / name
        folder.mkdir(parents=True)
        (folder / "study.json").write_text(json.dumps({"subject": name[:4]}))
        folders.append(folder)
    train, val = split_subjects(folders)  # subjects P001-P005: the third (P003) is validation
    assert [f.name for f in val] == ["P003", "P003-scan2"]
    assert [f.name for f in train] == ["P001", "P002", "P002-scan2", "P004", "P005"]
    assert [f.name for f in split_subjects(folders, offset=1)[1]] == ["P002", "P002-scan2"]


def test_known_mask_without_thoracic_or_sacrum_labels(cohort: Path) -> None:
    known = known_mask(load_subject(cohort / "s0"), margin_mm=2.5)  # 2 rows
    rows = known.any(axis=(0, 2))
    # labels span rows 4..51: known rows 2..53 only
    assert np.nonzero(rows)[0].tolist() == list(range(2, 54))


def test_known_mask_with_sacrum_keeps_caudal_rows(cohort: Path) -> None:
    rows = known_mask(load_subject(cohort / "s1"), margin_mm=2.5).any(axis=(0, 2))
    assert np.nonzero(rows)[0].tolist() == list(range(2, 64))


def test_annotated_slices_limit_known_and_cached_slices(tmp_path: Path) -> None:
    write_subject(tmp_path / "a", seed=5)
    (tmp_path / "a" / "annotated_slices.json").write_text("[2, 3]")
    subject = load_subject(tmp_path / "a")
    assert np.nonzero(known_mask(subject).any(axis=(1, 2)))[0].tolist() == [2, 3]
    every = load_subject(tmp_path / "a", annotated=False)
    assert every.annotated_slices is None
    cached = cache_subject(subject, CARD)
    assert cached.x.shape == (2, 3, 64, 32)
    assert int((cached.target == 1).sum()) == 2 * 5 * 8 * 16


def test_training_two_epochs_lowers_the_loss(cohort: Path, tmp_path: Path) -> None:
    cached = [cache_subject(load_subject(cohort / f"s{i}"), CARD) for i in range(3)]
    net = tiny_net()
    opts = TrainOptions(
        epochs=2,
        samples_per_epoch=64,
        batch_size=8,
        learning_rate=1e-2,
        crop_mm=40.0,
        augment=AugmentConfig(rotate_deg=0.0, p_lowres=0.0),
    )
    hist = train_network(net, CARD, cached[:2], cached[2:], tmp_path, options=opts)
    assert hist.rows[1]["loss"] < hist.rows[0]["loss"]
    assert (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "best.pt").is_file()


@pytest.mark.parametrize("keep", ["last", "best"])
def test_the_run_ends_with_the_weights_it_was_told_to_keep(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: str
) -> None:
    # validation Dice falls, 0.9 then 0.1: the best epoch is the first, the last the second
    scores = iter([(0.9, None), (0.1, None)])
    monkeypatch.setattr("vertebrafat.train.loop.validation_scores", lambda *a, **k: next(scores))
    cached = [cache_subject(load_subject(cohort / f"s{i}"), CARD) for i in range(3)]
    net = tiny_net()
    opts = TrainOptions(epochs=2, samples_per_epoch=16, batch_size=8, crop_mm=40.0, keep=keep)
    hist = train_network(net, CARD, cached[:2], cached[2:], tmp_path, options=opts)
    assert (hist.best_epoch, hist.epoch) == (1, 2)
    last = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["net"]
    best = torch.load(tmp_path / "best.pt", weights_only=False)["net"]
    assert not all(torch.equal(last[k], best[k]) for k in last)
    kept = last if keep == "last" else best
    assert all(torch.equal(net.state_dict()[k], kept[k]) for k in kept)


def test_train_options_refuse_an_unknown_keep() -> None:
    with pytest.raises(ValueError, match="keep must be one of last, best"):
        TrainOptions(keep="median")


def test_resumed_training_equals_uninterrupted(cohort: Path, tmp_path: Path) -> None:
    cached = [cache_subject(load_subject(cohort / f"s{i}"), CARD) for i in range(3)]
    opts = TrainOptions(epochs=2, samples_per_epoch=16, batch_size=8, crop_mm=40.0)
    straight = tiny_net()
    train_network(straight, CARD, cached[:2], cached[2:], tmp_path / "a", options=opts)
    resumed = tiny_net()
    # a time limit stops after the first epoch; then resume for the second
    one = TrainOptions(
        epochs=2, samples_per_epoch=16, batch_size=8, crop_mm=40.0, time_limit_s=1e-9
    )
    train_network(resumed, CARD, cached[:2], cached[2:], tmp_path / "b", options=one, resume=True)
    train_network(resumed, CARD, cached[:2], cached[2:], tmp_path / "b", options=opts, resume=True)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["net"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["net"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_onnx_export_matches_torch_within_1e_4() -> None:
    net = UNet(3, 3, features=(4, 8, 16), dropout=(0.0, 0.1, 0.2))
    for m in net.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = np.random.default_rng(0).normal(size=(3, 3, 48, 32)).astype(np.float32)
    assert max_onnx_difference(net, onnx_bytes(net, n_planes=3), x) < 1e-4


def test_cli_train_writes_a_loadable_model(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "model"
    code = main(
        [
            "train",
            str(cohort),
            str(out),
            "--channels",
            "water,fat",
            "--epochs",
            "1",
            "--samples",
            "16",
            "--json",
        ]
    )
    assert code == 0
    card = json.loads(capsys.readouterr().out)
    assert card["input"]["required_channels"] == ["water"]
    assert card["output"]["classes"] == ["background", "vertebral_body", "sacrum"]
    assert card["training"]["validation_subjects"] == [f"{cohort.name}/s2"]
    model = load_model(out / "vertebrafat-unet-default.onnx")
    subject = load_subject(cohort / "s0")
    assert predict(model, subject.image).mask.shape == (6, 64, 32)
    # recomputing the validation with the same code gives the training-time figures
    again = revalidate(out / "vertebrafat-unet-default.onnx", [cohort], annotated=True)
    assert again["validation"] == card["validation"]
    assert again["validation_recomputed_with"].startswith("vertebrafat ")
    assert again["sha256"] == card["sha256"]
    assert stale_reason(card) is None  # the training run records the fingerprint too
    # the CLI verb: data sets as the card recorded them (paths as given at training time)
    onnx = out / "vertebrafat-unet-default.onnx"
    card_path = onnx.with_suffix(".json")
    card_path.write_text(json.dumps({**card, "validation_fingerprint": None}))
    assert main(["train", "--revalidate", str(onnx), "--json"]) == 0
    cli_card = json.loads(capsys.readouterr().out)
    assert cli_card["validation"] == card["validation"]
    assert stale_reason(json.loads(card_path.read_text())) is None
    # a card with test figures needs their data set
    card_path.write_text(json.dumps({**card, "validation": {"test:ph": {}}}))
    assert main(["train", "--revalidate", str(onnx)]) == 2
    assert "test figures for ph; give each with --test PATH" in capsys.readouterr().err
    assert main(["train", "--revalidate", str(tmp_path / "none.onnx")]) == 2
    assert "none.json: not a readable model card" in capsys.readouterr().err


def test_cli_train_fold_picks_the_validation_subject(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", str(cohort), str(tmp_path / "m"), "--channels", "water", "--epochs", "1",
            "--samples", "8", "--json"]
    assert main([*args, "--fold", "0"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["training"]["validation_subjects"] == [f"{cohort.name}/s0"]
    assert card["training"]["fold"] == 0
    assert main([*args, "--fold", "5"]) == 2
    assert "fold 5: must be 0-4" in capsys.readouterr().err
    # resuming into the same OUT with another fold would mix the splits: refused
    assert main([*args, "--fold", "1", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "split.json: --resume with another split" in err and f"{cohort.name}/s0" in err


def test_cli_train_refuses_unknown_channel(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", str(cohort), str(tmp_path / "m"), "--channels", "water,t1"]) == 2
    assert "--channels water,t1" in capsys.readouterr().err


def test_named_dice_does_not_charge_an_unlabelled_t12_to_l1() -> None:
    from vertebrafat.train.validation import score_subject, summarise

    labels = np.zeros((3, 30, 10), np.uint8)
    labels[:, 5:11, 2:8] = 20  # L1: 3 x 6 x 6 = 108 voxels
    labels[:, 15:21, 2:8] = 21  # L2
    pred = labels > 0
    pred[:, 0:4, 2:8] = True  # T12, a real body the truth leaves unlabelled (72 voxels)
    named = labels.copy()
    named[:, 0:4, 2:8] = 19
    known = np.ones(labels.shape, bool)
    scores = score_subject(labels, pred, known, subject="s", named=named)
    # Voronoi share: T12's voxels are nearest to L1, so they are L1's false positives
    assert scores.dice_per_level == {"L1": pytest.approx(2 * 108 / (108 + 180)), "L2": 1.0}
    assert scores.dice_named == {"L1": 1.0, "L2": 1.0}
    assert scores.dice_binary == pytest.approx(2 * 216 / (216 + 288))
    misnamed = score_subject(labels, pred, known, subject="s", named=np.where(named, named + 1, 0))
    assert misnamed.dice_named["L1"] == 0.0  # T12 named L1, L1 named L2: no overlap with L1
    summary = summarise([scores, misnamed])
    assert summary["per_vertebra_named"]["mean"] == pytest.approx((1 + 1 + 0 + 0) / 4)


def test_cli_train_refuses_an_unknown_keep(capsys: pytest.CaptureFixture[str]) -> None:
    from vertebrafat.cli import main

    assert main(["train", "a", "b", "--keep", "median"]) == 2
    assert capsys.readouterr().err == "error: --keep median: must be one of last, best\n"


def _spine_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eight 40 x 12 slices: bodies (class 1) on rows 10-29, sacrum (class 2) on rows 30-33."""
    target = torch.zeros(8, 40, 12, dtype=torch.long)
    target[:, 10:30, 3:9] = 1
    target[:, 30:34, 3:9] = 2
    x = torch.ones(8, 3, 40, 12)
    return x, target, torch.ones(8, 40, 12, dtype=torch.bool)


def test_fov_cut_at_reach_zero_cuts_exactly_at_the_spine_ends() -> None:
    from vertebrafat.train.augment import fov_cut

    x, target, known = _spine_batch()
    cfg = AugmentConfig(p_fov_cut=1.0, fov_cut_reach=0.0)
    cut_x, cut_known = fov_cut(x, target, known, cfg, torch.Generator().manual_seed(3))
    kept_rows = cut_known.all(dim=2)  # (8, 40)
    lower = torch.zeros(40, dtype=torch.bool)
    lower[:34] = True  # the edge just below the sacrum's last row
    upper = torch.zeros(40, dtype=torch.bool)
    upper[10:] = True  # the edge at the first body row
    sides = [bool((k == lower).all()) for k in kept_rows]
    assert all(s or bool((k == upper).all()) for s, k in zip(sides, kept_rows, strict=True))
    assert 0 < sum(sides) < 8  # both edges drawn in eight slices (seed 3)
    assert bool(((cut_x == 0) == ~cut_known.unsqueeze(1)).all())  # every plane zero out there
    assert bool((x == 1).all()) and bool(known.all())  # the inputs are left as they were


def test_fov_cut_stays_within_its_reach() -> None:
    from vertebrafat.train.augment import fov_cut

    x, target, known = _spine_batch()
    cfg = AugmentConfig(p_fov_cut=1.0, fov_cut_reach=0.35)  # 0.35 of rows 10-33: 8 rows
    _, cut_known = fov_cut(x, target, known, cfg, torch.Generator().manual_seed(0))
    for k in cut_known.all(dim=2):
        gone = torch.nonzero(~k)[:, 0]
        assert gone.numel() > 0
        if int(gone[0]) > 0:  # lower edge: somewhere in rows 26-34
            assert 26 <= int(gone[0]) <= 34 and int(gone[-1]) == 39
        else:  # upper edge: somewhere in rows 10-18
            assert 10 <= int(gone[-1]) + 1 <= 18


def test_cli_train_refuses_augmentation_shares_outside_zero_to_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["train", "a", "b", "--fov-cut", "1.5"]) == 2
    assert capsys.readouterr().err == "error: --fov-cut 1.5: must be a share from 0 to 1\n"
    assert main(["train", "a", "b", "--dark-discs", "-0.1"]) == 2
    assert capsys.readouterr().err == "error: --dark-discs -0.1: must be a share from 0 to 1\n"


def _two_bodies() -> tuple[torch.Tensor, torch.Tensor]:
    """One 40 x 12 slice: bodies on rows 10-19 and 25-34 (cols 3-8), a 5-row disc between;
    water 0.5 in the bodies, 1.0 in the disc, 0.2 elsewhere; the fat plane all 0.3."""
    target = torch.zeros(1, 40, 12, dtype=torch.long)
    target[:, 10:20, 3:9] = 1
    target[:, 25:35, 3:9] = 1
    x = torch.full((1, 2, 40, 12), 0.2)
    x[0, 0][target[0] == 1] = 0.5
    x[0, 0, 20:25, 3:9] = 1.0
    x[0, 1] = 0.3
    return x, target


def test_disc_gaps_are_the_rows_between_bodies_shorter_than_the_line() -> None:
    from vertebrafat.train.augment import disc_gaps

    _, target = _two_bodies()
    expected = torch.zeros(1, 40, 12, dtype=torch.bool)
    expected[:, 20:25, 3:9] = True
    assert torch.equal(disc_gaps(target, 7), expected)  # a 7-row line closes gaps up to 6 rows
    assert not bool(disc_gaps(target, 5).any())  # a 5-row line closes up to 4: the disc stays


def test_dark_discs_bring_the_disc_to_the_bodies_water_signal() -> None:
    from vertebrafat.train.augment import dark_discs

    x, target = _two_bodies()
    cfg = AugmentConfig(p_dark_discs=1.0, dark_discs=(1.0, 1.0), disc_level=(1.0, 1.0),
                        disc_rows=7)
    out = dark_discs(x, target, (0,), cfg, torch.Generator().manual_seed(0))
    water = out[0, 0]
    assert torch.allclose(water[21:24, 4:8], torch.tensor(0.5))  # the disc's inside: the bodies'
    assert torch.allclose(water[20, 4:8], torch.tensor(0.5 * 2 / 3 + 1.0 / 3))  # its edge row
    assert torch.equal(water[:19], x[0, 0, :19]) and torch.equal(water[26:], x[0, 0, 26:])
    assert torch.equal(out[0, 1], x[0, 1])  # the fat plane is left alone
    half = AugmentConfig(p_dark_discs=1.0, dark_discs=(0.5, 0.5), disc_level=(0.4, 0.4),
                         disc_rows=7)
    dim = dark_discs(x, target, (0,), half, torch.Generator().manual_seed(0))[0, 0]
    assert torch.allclose(dim[22, 5], torch.tensor(0.5 * 1.0 + 0.5 * 0.4 * 0.5))
