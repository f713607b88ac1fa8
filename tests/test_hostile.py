"""Files from others are input like options: hostile fixtures, each built here, each refused with one line.

Each case is a file someone could hand over (a checkpoint, a dataset, an image). None may run code, touch a
file outside the command's output, or allocate what its content does not justify.
"""


import torch

from cellsdf.cli import main

SMALL_TRAIN = [
    "progress=false",
    "cellline=plat",
    "data.simulate.sequences=2",
    "data.simulate.frames=3",
    "data.simulate.size=24",
    "data.prepare.points_per_frame=512",
    "data.prepare.eval_size=16",
    "data.loader.batch_size=4",
    "data.loader.points_per_item=128",
    "model.decoder.widths=[32,32]",
    "model.decoder.latent_size=8",
    "model.decoder.inject=[1]",
]


def test_a_resumed_checkpoint_cannot_delete_a_file_outside_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", f"out={out}", *SMALL_TRAIN, "trainer.max_epochs=1"])
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    crafted = tmp_path / "crafted.ckpt"
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    outside = str(out / "checkpoints" / ".." / ".." / "precious.txt")
    for state in checkpoint["callbacks"].values():
        state.update(best_model_path=outside, kth_best_model_path=outside, last_model_path=outside)
        if "best_k_models" in state:
            state["best_k_models"] = {outside: torch.tensor(0.0)}
    torch.save(checkpoint, crafted)
    main(["train", f"out={out}", f"ckpt_path={crafted}", *SMALL_TRAIN, "trainer.max_epochs=3"])
    assert precious.read_text() == "mine"
    assert "dropped callback paths outside the run's folder" in capsys.readouterr().err
    assert (out / "model.pt").is_file()
