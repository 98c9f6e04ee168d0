import json

import pytest

from stylecam import BundleError, Stylizer, load_bundle
from stylecam.bundle import FORMAT_VERSION, write_manifest


def test_bundled_style_verifies(candy_copy):
    b = load_bundle(candy_copy)
    assert b.name == "candy" and b.stride == 8 and "fp32" in b.variants
    m = b.manifest
    assert m["format_version"] == FORMAT_VERSION
    assert {"weights.safetensors", "model.onnx", "style.jpg"} <= set(m["files"])
    assert m["architecture"]["params"] > 0 and m["architecture"]["macs"]["480x640"] > 0
    assert m["export"]["parity"]["max_abs_error_vs_torch"] <= 1e-3
    assert m["style_image"]["licence"] != "unknown"


def test_tampered_file_is_refused(candy_copy):
    p = candy_copy / "model.onnx"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        Stylizer(candy_copy, backend="onnxruntime")


def test_truncated_file_is_refused(candy_copy):
    p = candy_copy / "weights.safetensors"
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(BundleError, match="truncated"):
        load_bundle(candy_copy)


def test_missing_file_is_refused(candy_copy):
    (candy_copy / "model.onnx").unlink()
    with pytest.raises(BundleError, match="missing"):
        load_bundle(candy_copy)


def test_unknown_format_version_is_refused(candy_copy):
    mf = candy_copy / "manifest.json"
    m = json.loads(mf.read_text())
    m["format_version"] = FORMAT_VERSION + 1
    mf.write_text(json.dumps(m))
    with pytest.raises(BundleError, match="format version"):
        load_bundle(candy_copy)


def test_corrupt_manifest_is_refused(candy_copy):
    (candy_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(candy_copy)


def test_missing_variant_says_how_to_make_it(candy_copy):
    m = load_bundle(candy_copy).manifest  # as exported without --precision int8
    m["files"].pop("model.int8.onnx")
    m["variants"].pop("int8")
    (candy_copy / "model.int8.onnx").unlink()
    write_manifest(candy_copy, m)
    with pytest.raises(BundleError, match="stylecam export"):
        load_bundle(candy_copy).model_file("int8")


@pytest.mark.parametrize("edit,field", [
    (lambda m: m["input"].update(stride=0), "input.stride"),
    (lambda m: m["input"].update(stride="4"), "input.stride"),
    (lambda m: m["input"].update(margin=-5), "input.margin"),
    (lambda m: m.update(input="oops"), "input"),
    (lambda m: m.update(name=""), "name"),
    (lambda m: m["files"].update({"model.onnx": {"bytes": "many"}}), "files.model.onnx"),
    (lambda m: m.update(architecture="small"), "architecture"),
])
def test_a_hand_edited_manifest_names_the_bad_field(candy_copy, edit, field):
    path = candy_copy / "manifest.json"
    m = json.loads(path.read_text())
    edit(m)
    path.write_text(json.dumps(m))
    with pytest.raises(BundleError, match=f"{field} must be .*fix that field, or re-export"):
        Stylizer(candy_copy, backend="onnxruntime")
