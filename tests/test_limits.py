"""Small files and options that declare more than memory holds are refused before anything is allocated."""

import json

import h5py
import numpy as np
import pytest
import tifffile
import torch

from cellsdf.dataset.prepared import SequenceInfo, create_prepared, read_index, read_prepared
from cellsdf.errors import InputError
from cellsdf.io import limits
from cellsdf.io.ctc import read_ctc_tracks
from cellsdf.io.omezarr import omezarr_writer, read_omezarr
from cellsdf.io.reference import read_reference_sdf
from cellsdf.io.tiff import iter_frames, read_timelapse
from cellsdf.model import checkpoint
from cellsdf.model.trained import load_trained
from cellsdf.reconstruct.outputs import output_options
from cellsdf.simulate.write import simulate_to_folder

# Far beyond any machine's memory (a pebibyte and more), so the refusals do not depend on where tests run.
HUGE = 2**20


def huge_tiff(path, side=900_000):
    """A few hundred bytes of uncompressed ImageJ TIFF whose header declares 4 x side² pixels (2.9 TiB)."""
    tifffile.imwrite(path, np.zeros((2, 2, 4, 4), np.uint8), imagej=True, metadata={"axes": "TZYX"})
    with tifffile.TiffFile(path, mode="r+") as tif:
        for page in tif.pages:
            page.tags["ImageWidth"].overwrite(side)
            page.tags["ImageLength"].overwrite(side)
    return path


def test_check_allocation_names_the_source_and_both_sizes_in_gib(monkeypatch):
    monkeypatch.setattr(limits, "available_memory", lambda: 2 * 2**30)
    assert limits.check_allocation("a.tif", 2**30, what="its pixels") == 2**30
    with pytest.raises(
        InputError, match=r"^a.tif: its pixels would need 3.0 GiB .* only 2.0 GiB is available"
    ):
        limits.check_allocation("a.tif", 3 * 2**30, what="its pixels")
    with pytest.raises(InputError, match=r"resolution: 2048³ needs about 64.0 GiB.*smaller resolution"):
        limits.check_grid("resolution", 2048, 8)


@pytest.mark.parametrize("read", [read_timelapse, lambda p: next(iter_frames(p))], ids=["whole", "frames"])
def test_tiff_header_declaring_terabytes_is_refused_before_reading(tmp_path, read):
    path = huge_tiff(tmp_path / "big.tif")
    assert path.stat().st_size < 2000
    with pytest.raises(
        InputError, match=r"big.tif: its pixels \(.*900000 x 900000 uint8\) would need 3,017.5 GiB"
    ):
        read(path)


def test_hdf5_reference_with_an_empty_huge_dataset_is_refused(tmp_path):
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("sdf_vid", shape=(HUGE, HUGE, HUGE, 2), dtype=np.float32, chunks=(16, 16, 16, 1))
    assert path.stat().st_size < 10_000
    with pytest.raises(InputError, match="big.h5: 'sdf_vid' .* would need .* GiB"):
        read_reference_sdf(path)


def test_prepared_dataset_declaring_huge_datasets_is_refused(tmp_path):
    path = tmp_path / "big.h5"
    info = SequenceInfo("a", "test", (1.0, 1.0, 1.0), HUGE, 1.0, None)
    create_prepared(path, HUGE, HUGE, 4, {"scale": 0.1}, [info]).close()
    with pytest.raises(InputError, match="big.h5: .* frames of .* points .* would need"):
        read_prepared(path)


def test_ctc_label_of_the_largest_uint32_reads_without_a_lookup_table(tmp_path):
    folder = tmp_path / "01_GT" / "TRA"
    folder.mkdir(parents=True)
    labels = np.zeros((6, 8, 8), np.uint32)
    labels[2:4, 2:5, 2:5] = 2**32 - 1
    labels[1, 1, 1] = 7
    for t in range(2):
        tifffile.imwrite(folder / f"man_track{t:03d}.tif", labels)
    tracks = read_ctc_tracks(tmp_path)
    assert [t.name for t in tracks] == ["01_label7", "01_label4294967295"]
    assert [int(t.masks.sum()) for t in tracks] == [2, 36]


def test_checkpoint_asking_for_millions_of_sequences_is_refused_before_the_model_is_built(
    tmp_path, monkeypatch
):
    content = checkpoint.read_checkpoint(checkpoint.resolve_checkpoint("plat"))
    content["hyper_parameters"]["n_sequences"] = 12_000_000
    path = tmp_path / "model.pt"
    torch.save(content, path)
    built = checkpoint.AutoDecoder

    def meta_only(*args, **kwargs):
        # 12 million codes would take gigabytes: only the memory-free meta device may build them.
        assert torch.empty(0).device.type == "meta", "the model was built before its weights were checked"
        return built(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "AutoDecoder", meta_only)
    with pytest.raises(
        InputError, match=r"latents.weight has shape \(\d+, \d+\), the model expects \(12000000"
    ):
        load_trained(path)


def test_grid_options_beyond_memory_are_refused(tmp_path):
    with pytest.raises(InputError, match="^resolution: 100000³ needs about .* GiB"):
        output_options(resolution=100_000, frames=None, formats=["tiff"], mesh_format="ply")
    with pytest.raises(InputError, match="^size: 100000³ needs about"):
        simulate_to_folder("plat", tmp_path / "sim", sequences=1, frames=1, size=100_000)
    assert not (tmp_path / "sim").exists()


def test_prepared_index_refuses_a_huge_declared_table(tmp_path):
    path = tmp_path / "big.h5"
    info = SequenceInfo("a", "test", (1.0, 1.0, 1.0), 1, 1.0, None)
    create_prepared(path, HUGE**2, 1, 4, {"scale": 0.1}, [info]).close()
    with pytest.raises(InputError, match="per-frame tables would need"):
        read_index(path)


def test_omezarr_array_declaring_a_huge_shape_is_refused(tmp_path):
    root = tmp_path / "a.ome.zarr"
    with omezarr_writer(root, (1, 2, 4, 4), spacing=(1.0, 1.0, 1.0), frame_interval=1.0) as add:
        add(np.ones((2, 4, 4), bool))
    meta_file = root / "labels" / "mask" / "0" / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["shape"] = [1, HUGE, HUGE, HUGE]
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(InputError, match="label image .* would need .* GiB"):
        read_omezarr(root)
