"""Prompt templates, the grayscale filter, and regeneration of rejected rows."""

from __future__ import annotations

import numpy as np
import pytest

from fake2real.errors import ConfigError
from fake2real.generate.filters import GrayscaleFilter, make_filters
from fake2real.generate.job import generate_filtered, retry_seed
from fake2real.generate.prompts import builtin_templates, load_template


def test_builtin_templates_follow_the_paper():
    assert builtin_templates() == ["celeba", "spuco_animals", "utkface", "waterbirds"]
    celeba = load_template("celeba")
    assert celeba.prompt(1, 1, seed=0) == "a headshot of Male celebrity Smiling"
    assert celeba.prompt(0, 0, seed=0) in {"a headshot of Female celebrity with serious face", "a headshot of Female celebrity with straight face"}
    assert celeba.prompt(1, 1, seed=0, bias_words=False) == "a headshot of a celebrity Smiling"
    spuco = load_template("spuco_animals")
    assert len(spuco.all_groups()) == 8 and (0, 2) not in spuco.all_groups()
    utk = load_template("utkface")
    assert utk.prompt(0, 0, seed=3).startswith("a headshot of a human Male ")


# The reference (mqraitem/From-Fake-to-Real, generation_code/): phrase lists per class and bias.
UTK_AGES = (
    ["baby", "aged three years old", "aged four years old", "aged five years old"],
    ["in their twenties", "in their thirties", "in their forties", "in their fifties"],
)
SPUCO_LOCATIONS = {
    "Indoors": ["indoors", "in the living room", "in the bedroom", "in the kitchen", "in the attic", "on the table",
                "under the table", "on the chair", "under the chair", "on the kitchen top", "in the sink"],
    "Outdoors": ["outdoors", "in the garden", "in the park", "in the forest", "in the field", "in the backyard",
                 "in the front yard", "in the driveway", "on the street", "on the sidewalk"],
    "Land": ["dirt", "grass", "rock", "sand", "soil", "mud", "gravel", "asphalt", "concrete", "pavement", "brick", "wood",
             "leaves", "snow", "ice", "clay", "dust", "cement", "metal", "tile"],
    "Water": ["water", "lake", "river", "pond", "sea", "ocean", "pool", "fountain", "stream", "waterfall"],
}


def test_builtin_templates_hold_the_reference_phrases():
    celeba = load_template("celeba")
    assert celeba.class_phrases == [["with serious face", "with straight face"], ["Smiling"]]
    assert celeba.bias_phrases == [["Female"], ["Male"]]
    assert {celeba.prompt(0, 1, seed) for seed in range(40)} == {
        "a headshot of Male celebrity with serious face", "a headshot of Male celebrity with straight face",
    }
    utk = load_template("utkface")
    assert utk.class_phrases == [["Male"], ["Female"]]
    assert [list(p) for p in utk.bias_phrases] == [UTK_AGES[0], UTK_AGES[1]]
    assert {utk.prompt(1, 1, seed) for seed in range(80)} == {f"a headshot of a human Female {age}" for age in UTK_AGES[1]}

    spuco = load_template("spuco_animals")
    land, water, indoor, outdoor = spuco.bias_phrases
    assert indoor == SPUCO_LOCATIONS["Indoors"] and outdoor == SPUCO_LOCATIONS["Outdoors"]
    # land/water words keep the "in" of the reference's template; its dog phrases bring their own
    assert land == [f"in {w}" for w in SPUCO_LOCATIONS["Land"]] and water == [f"in {w}" for w in SPUCO_LOCATIONS["Water"]]
    landbirds, waterbirds, small_dogs, big_dogs = spuco.class_phrases
    assert (len(landbirds), len(waterbirds), len(small_dogs), len(big_dogs)) == (35, 24, 36, 74)
    # the reference file's words merged at line wraps, fixed
    assert {"Staffordshire Bull Terrier", "Gordon Setter", "Welsh Springer Spaniel", "Old English Sheepdog", "Great Pyrenees dog"} <= set(big_dogs)
    assert {"Australian Silky Terrier", "Soft-coated Wheaten Terrier"} <= set(small_dogs)
    assert {"bittern bird", "ruddy turnstone", "king penguin"} <= set(waterbirds) and "kite (bird of prey)" in landbirds
    for phrases in spuco.class_phrases:
        assert all(p == p.strip() and "  " not in p for p in phrases) and len(set(phrases)) == len(phrases)
    prompts = {spuco.prompt(y, b, seed) for y, b in spuco.all_groups() for seed in range(200)}
    assert not any(" in in " in p or " in on " in p or " in under " in p or " in indoors" in p or " in outdoors" in p for p in prompts)
    assert "a photo of Beagle in the garden" in {spuco.prompt(3, 3, seed) for seed in range(5000)}
    assert "a photo of duck in lake" in {spuco.prompt(1, 1, seed) for seed in range(2000)}


def test_phrases_are_drawn_per_seed_deterministically():
    spuco = load_template("spuco_animals")
    prompts = {spuco.prompt(0, 1, seed) for seed in range(50)}
    assert len(prompts) > 40  # 35 birds × 10 places: the draws vary with the seed …
    assert all(spuco.prompt(0, 1, s) == spuco.prompt(0, 1, s) for s in range(10))  # … and repeat for a seed
    assert all(p.startswith("a photo of ") and " in " in p for p in prompts)


def test_placeholder_no_group_fills_is_one_line_error(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: t\nclass_names: [a, b]\nbias_names: [c, d]\ntemplate: 'a photo of {breed} in {bias}'\n"
        "class_phrases: [[x], [y]]\nbias_phrases: [[u], [v]]\n"
    )
    with pytest.raises(ConfigError, match=r"placeholder \{breed\} is not filled by any group") as error:
        load_template(str(path))
    assert "\n" not in str(error.value)


def test_template_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="unknown template 'nope'.*celeba"):
        load_template("nope")
    with pytest.raises(ConfigError, match="template file not found"):
        load_template(str(tmp_path / "missing.yaml"))
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nclass_names: [a, b]\nbias_names: [c]\ntemplate: '{class}'\nclass_phrases: [[x]]\nbias_phrases: [[u]]\n")
    with pytest.raises(ConfigError, match="class_phrases has 1 lists for 2 classes"):
        load_template(str(path))


def test_grayscale_filter():
    gray = np.repeat(np.random.default_rng(0).integers(0, 255, (8, 8, 1), dtype=np.uint8), 3, axis=2)
    colour = gray.copy()
    colour[..., 0] = np.clip(colour[..., 0].astype(int) + 40, 0, 255)
    assert GrayscaleFilter().reject(gray, "p")
    assert not GrayscaleFilter().reject(colour, "p")
    with pytest.raises(ConfigError, match="unknown filter 'clip'"):
        make_filters([{"name": "clip"}])
    with pytest.raises(ConfigError, match="grayscale"):
        make_filters([{"name": "grayscale", "thresh": 3}])


class SeedParityBackend:
    """A stand-in generator: grayscale images for even seeds, colour for odd ones."""

    def __init__(self):
        self.calls = []

    def generate(self, y, b, prompts, seeds):
        self.calls.append([int(s) for s in seeds])
        out = []
        for s in seeds:
            image = np.full((4, 4, 3), 100, dtype=np.uint8)
            if s % 2:
                image[..., 0] = 200
            out.append(image)
        return out


def test_rejected_rows_are_regenerated_with_derived_seeds():
    backend = SeedParityBackend()
    seeds = [2, 3, 4]
    images, final, rejections = generate_filtered(backend, [GrayscaleFilter()], 5, [0, 0, 1], [0, 1, 1], ["p"] * 3, seeds)
    assert final[1] == 3 and rejections[1] == 0  # colour at once: kept with its own seed
    for row in (0, 2):
        # Rejected k times: the image comes from the k-th derived seed, which is odd (colour).
        k = rejections[row]
        assert 1 <= k < 5
        assert final[row] == retry_seed(seeds[row], k) and final[row] % 2 == 1
        assert all(retry_seed(seeds[row], j) % 2 == 0 for j in range(1, k))
        assert images[row][0, 0, 0] == 200
    assert backend.calls[0] == seeds  # later calls regenerate only the rejected rows
    assert all(len(call) <= 2 for call in backend.calls[1:])


def test_rows_rejected_on_every_attempt_are_kept_and_counted():
    class AlwaysGray(SeedParityBackend):
        def generate(self, y, b, prompts, seeds):
            return [np.full((4, 4, 3), 7, dtype=np.uint8) for _ in seeds]

    _, _, rejections = generate_filtered(AlwaysGray(), [GrayscaleFilter()], 3, [0, 1], [0, 1], ["p", "q"], [5, 6])
    assert rejections.tolist() == [3, 3]
