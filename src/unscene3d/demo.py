"""The demo: every stage that exists so far, run on a generated synthetic room with ground truth.

It needs no data and no weights, so it is the first thing a new user runs. Results go to one folder:

    index.html                      the page to open first: the scan in 3D with every layer below
                                    (`unscene3d view`; self-contained, opens offline)
    scene.ply                       the synthetic scan (coloured mesh)
    gt/<scene>.txt                  its ground truth (benchmark convention)
    segments.segs.json / .ply       the mesh oversegmentation (ScanNet format / coloured by segment)
    predictions/<method>/           each method's instances in the ScanNet benchmark format
    <method>_instances.ply          the same, coloured by instance (grey = no instance)
    pseudo/<scene>.npz              pseudo masks with the defaults (the model of objects: candidate masks
                                    ranked by the shipped ranker), reusable by `unscene3d train`
    evaluation.json                 class-agnostic AP / AP50 / AP25 of each method, in percent

    rooms/, selftraining/           ``unscene3d fit`` on ``fit_rooms`` more generated rooms (seeds after the demo's):
                                    pseudo masks, a ranker round, self-training rounds, each round's masks,
                                    evaluation.json

Methods: the two learning-free baselines, the pseudo masks, and -- given a self-training run
(``run``) -- that model's predictions. Then the whole method on a few rooms: ``fit`` with one ranker round and a short schedule of
the segment preset (:data:`DEMO_FIT_STEPS`; about a minute on 2 cores), and its AP per round.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from unscene3d.baselines import felzenszwalb_instances, hdbscan_instances
from unscene3d.evaluation import evaluate_scenes, format_table
from unscene3d.instances import Instances
from unscene3d.io.atomic import atomic_write_text
from unscene3d.io.benchmark import export_predictions, write_gt_txt
from unscene3d.io.ply import write_ply
from unscene3d.io.segments import write_segs_json
from unscene3d.oversegment import oversegment
from unscene3d.predict import Predictor
from unscene3d.pseudo.pipeline import PseudoMaskOptions, pseudo_masks_for_scene, write_pseudo_masks
from unscene3d.scene import Scene
from unscene3d.synthetic import make_synthetic_scene
from unscene3d.viewer import write_page
from unscene3d.visualize import INSTANCES_PLY_SUFFIX, write_instances_ply, write_labels_ply

log = logging.getLogger(__name__)

# The demo's self-training: round 1 and later rounds' steps (the segment preset trains 1,000 + 300).
DEMO_FIT_STEPS = (150, 50)
# The demo's ranker round replays this many generated rooms (``fit``'s default: 60, about a minute to make once).
DEMO_REPLAY_SCENES = 6


def run_demo(
    output: Path,
    *,
    seed: int = 0,
    run: Path | None = None,
    fit_rooms: int = 3,
    rounds: int = 2,
    fit_steps: tuple[int, int] = DEMO_FIT_STEPS,
) -> str:
    """Run the demo into ``output`` and return a printable summary; ``run`` adds a self-trained model's
    predictions (a run folder, round folder or checkpoint of `unscene3d train`); ``fit_rooms`` rooms
    (0: none) go through ``fit`` for ``rounds`` rounds of ``fit_steps`` steps."""
    predictor = Predictor.load(run) if run is not None else None  # a bad run folder fails before any output
    output.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    scene = make_synthetic_scene(seed)
    log.info("synthetic scene %s: %d vertices, %d faces", scene.name, scene.num_vertices, len(scene.faces))
    write_ply(output / "scene.ply", scene.vertices, scene.faces, scene.colors)
    scene.source = output / "scene.ply"  # recorded by the pseudo masks, so `train` and `view` find the scan
    write_gt_txt(output / "gt" / f"{scene.name}.txt", scene.gt)

    segmentation = oversegment(scene.vertices, scene.faces, scene.colors)
    write_segs_json(output / "segments.segs.json", segmentation.seg_ids, scene.name, segmentation.params)
    write_labels_ply(output / "segments.ply", scene, segmentation.labels)
    log.info("oversegmentation: %d segments", segmentation.num_segments)

    methods = [("felzenszwalb", felzenszwalb_instances), ("hdbscan", hdbscan_instances),
               ("pseudo_masks", lambda scene: _pseudo_masks(scene, output / "pseudo"))]
    if predictor is not None:
        methods.append(("selftrained", lambda scene: _selftrained(predictor, scene)))
    figures = {}
    tables = []
    for name, method in methods:
        found = method(scene)
        export_predictions(output / "predictions" / name, scene.name, found.masks, found.scores)
        write_instances_ply(output / f"{name}{INSTANCES_PLY_SUFFIX}", scene, found)
        result = evaluate_scenes([(scene.name, found, scene.gt)])
        figures[name] = result.to_json()
        tables.append(f"{name} ({len(found)} instances)\n{format_table(result)}")
        log.info("%s: %d instances", name, len(found))

    atomic_write_text(output / "evaluation.json", json.dumps(figures, indent=2) + "\n")
    if fit_rooms:
        tables.append(_fit_rooms(output, seed, fit_rooms, rounds, fit_steps))
    page = write_page([output], output / "index.html", title=f"unscene3d demo: {scene.name}")
    elapsed = time.perf_counter() - start
    return "\n\n".join(
        [f"demo scene {scene.name}: {scene.num_vertices} vertices, {segmentation.num_segments} segments"]
        + tables
        + [f"results in {output} ({elapsed:.1f}s); open {page.path} in a browser to look at them"]
    )


def _fit_rooms(output: Path, seed: int, count: int, rounds: int, steps: tuple[int, int]) -> str:
    """``fit`` on ``count`` generated rooms (the seeds after ``seed``) with a short schedule; its per-round table."""
    from unscene3d.fit import FitOptions, fit, format_rounds
    from unscene3d.proposals.self_training import SelfTrainingConfig
    from unscene3d.train.selftrain import preset_config

    rooms = output / "rooms"
    for room_seed in range(seed + 1, seed + 1 + count):
        scene = make_synthetic_scene(room_seed)
        write_gt_txt(rooms / "gt" / f"{scene.name}.txt", scene.gt)
        write_ply(rooms / f"{scene.name}.ply", scene.vertices, scene.faces, scene.colors)
    config = preset_config("segment", steps=steps[0], finetune_steps=steps[1])
    # "selftraining" sorts after "predictions": the page opens on the demo room
    ranker = SelfTrainingConfig(rounds=1, replay_scenes=DEMO_REPLAY_SCENES)
    result = fit([rooms], output / "selftraining", FitOptions(rounds=rounds, config=config, page=False,
                                                              self_training=ranker))
    return (f"fit on {count} rooms (1 ranker round replaying {DEMO_REPLAY_SCENES} generated rooms, {rounds} rounds of "
            f"{steps[0]} + {steps[1]} steps; `unscene3d fit` trains longer), AP of the pseudo masks and each round:\n"
            f"{format_rounds(result.evaluation)}")


def _pseudo_masks(scene: Scene, out_dir: Path) -> Instances:
    """Pseudo masks with the default options (the model of objects), written as `pseudo-masks` would."""
    pseudo = pseudo_masks_for_scene(scene, PseudoMaskOptions())
    write_pseudo_masks(out_dir, pseudo, scene)
    return pseudo.vertex_instances()


def _selftrained(predictor: Predictor, scene: Scene) -> Instances:
    return predictor.predict(scene)  # on the segments it was trained with (`segment_scene`)
