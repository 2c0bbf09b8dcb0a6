"""The Docker images, checked without a Docker engine (none exists where these tests run).

What a build would find out late is checked from the files: every COPY source
exists and survives .dockerignore; every Python package an image installs
(rosdep's pip keys of the packages it builds) is pinned in
requirements/constraints.txt and installed into the venv, never over apt's
packages; the robot image carries no torch; and the commands the images and
the compose file run name executables, launch files, launch arguments and
`farl` subcommands that exist.
"""
from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from farl_learner.cli import SUBCOMMANDS

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "docker" / "Dockerfile"
COMPOSE = REPO / "docker" / "compose.yaml"
CONSTRAINTS = REPO / "requirements" / "constraints.txt"
# Packages the images take from apt, not from the constraints: ROS 2's compiled message modules
# need apt's numpy (a pip numpy 2 in the venv would shadow it).
APT_OWNED = {"numpy"}


@dataclass
class Stage:
    name: str
    parent: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str, stages: dict[str, "Stage"]) -> list[str]:
        """Arguments of `keyword` in this stage and the stages it is built FROM."""
        inherited = stages[self.parent].all(keyword, stages) if self.parent in stages else []
        return inherited + [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(path: Path = DOCKERFILE) -> dict[str, Stage]:
    logical, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = re.split(r"\s+as\s+", args, flags=re.I)
            stage = Stage(parts[1].strip() if len(parts) > 1 else parts[0], parts[0].strip())
            stages[stage.name] = stage
        elif stage is not None:
            stage.instructions.append((keyword, args.strip()))
    return stages


STAGES = parse_dockerfile()
IMAGES = ("robot", "learner")


def copy_sources(args: str) -> list[str]:
    tokens = [t for t in shlex.split(args) if not t.startswith("--")]
    return tokens[:-1]


def built_packages(stage: Stage) -> set[str]:
    found = set()
    for args in stage.all("COPY", STAGES):
        for source in copy_sources(args):
            parts = Path(source.rstrip("/")).parts
            if parts == ("src",):
                found |= {p.name for p in (REPO / "src").iterdir() if (p / "package.xml").is_file()}
            elif len(parts) == 2 and parts[0] == "src":
                found.add(parts[1])
    return found


def run_lines(stage: Stage) -> list[str]:
    return stage.all("RUN", STAGES)


def pinned() -> dict[str, str]:
    out = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            out[normalize(name)] = version.strip()
    return out


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_keys(package: str) -> set[str]:
    root = ET.parse(REPO / "src" / package / "package.xml").getroot()
    return {e.text.strip() for tag in ("depend", "exec_depend") for e in root.iter(tag) if e.text}


def pip_packages_of(stage: Stage) -> set[str]:
    """What rosdep's pip installer puts into the image: the pip keys of the packages it builds."""
    custom = yaml.safe_load((REPO / "rosdep" / "farl.yaml").read_text())
    keys = set().union(*(declared_keys(p) for p in built_packages(stage)))
    return {pkg for key in keys if key in custom for pkg in custom[key]["ubuntu"]["pip"]["packages"]}


def explicit_pip_installs(stage: Stage) -> set[str]:
    """Names of the packages any `pip install` in a RUN line names (options and their values skipped)."""
    out = set()
    for line in run_lines(stage):
        for args in re.findall(r"\bpip3?\s+install\s+([^&;|]+)", line):
            tokens = args.split()
            for i, token in enumerate(tokens):
                takes_value = i > 0 and tokens[i - 1] in ("-c", "-r", "--constraint", "--requirement", "-i",
                                                          "--index-url", "--extra-index-url")
                if not token.startswith("-") and not takes_value:
                    out.add(re.split(r"[<>=!~\[]", token)[0])
    return out


def commands(stage: Stage) -> list[list[str]]:
    """The CMD of the image as argv; `bash -c "..."` unwrapped."""
    cmd = json.loads(stage.all("CMD", STAGES)[-1])
    if cmd[:2] == ["bash", "-c"]:
        cmd = shlex.split(cmd[2].removeprefix("exec "))
    return [cmd]


def console_scripts(package: str) -> set[str]:
    return set(re.findall(r'"([\w-]+)\s*=\s*[\w.]+:main"', (REPO / "src" / package / "setup.py").read_text()))


def stack_arguments() -> set[str]:
    return set(yaml.safe_load((REPO / "config" / "stacks" / "fragile_push_wall.yaml").read_text())["args"])


# ---- files ---------------------------------------------------------------------------------------


def test_both_images_are_stages_of_the_dockerfile():
    assert set(IMAGES) <= set(STAGES), list(STAGES)


@pytest.mark.parametrize("image", IMAGES)
def test_every_file_the_dockerfile_copies_exists(image):
    for args in STAGES[image].all("COPY", STAGES):
        for source in copy_sources(args):
            assert (REPO / source).exists(), f"docker/Dockerfile ({image}): COPY {source}: no such file in the repo"


def dockerignore_includes(path: str) -> bool:
    """Whether the allowlist .dockerignore lets `path` into the build context."""
    included = False
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        matches = pattern == "*" or path.rstrip("/") == pattern or path.startswith(pattern + "/")
        if matches:
            included = negate
    return included


@pytest.mark.parametrize("image", IMAGES)
def test_every_copied_file_survives_dockerignore(image):
    for args in STAGES[image].all("COPY", STAGES):
        for source in copy_sources(args):
            assert dockerignore_includes(source), f".dockerignore excludes {source}, which the {image} image copies"


def test_dockerignore_keeps_the_virtualenv_runs_and_data_out():
    for path in (".venv", "runs", "data", ".git", "test", "benchmarks"):
        assert not dockerignore_includes(path), path


def test_the_entrypoint_is_an_executable_script_that_sources_the_workspace():
    script = REPO / "docker" / "entrypoint.sh"
    assert script.stat().st_mode & 0o111, "docker/entrypoint.sh must be executable"
    text = script.read_text()
    assert "/opt/ros/${ROS_DISTRO}/setup.bash" in text and "/farl_ws/install/setup.bash" in text


# ---- Python packages --------------------------------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_every_pip_package_an_image_installs_is_pinned_by_the_constraints(image):
    packages = pip_packages_of(STAGES[image]) | explicit_pip_installs(STAGES[image])
    assert packages, "no pip packages found: the parser is broken"
    missing = sorted(p for p in packages if normalize(p) not in pinned())
    assert not missing, f"{image} image installs packages requirements/constraints.txt does not pin: {missing}"
    apt = sorted(p for p in packages if normalize(p) in APT_OWNED)
    assert not apt, f"{image} image pip-installs packages apt owns: {apt}"


def test_explicit_pip_installs_are_found_too():
    stage = Stage("x", None, [("RUN", "apt-get update && pip install -c c.txt onnxruntime==1.32.0 tqdm && true")])
    assert explicit_pip_installs(stage) == {"onnxruntime", "tqdm"}


def test_the_image_constraints_drop_only_apt_owned_pins():
    removed = set()
    for line in run_lines(STAGES["base"]):
        for pattern in re.findall(r"grep -v -E '\^\(?([\w|-]+)\)?=='", line):
            removed |= set(pattern.split("|"))
    assert removed == APT_OWNED, removed
    assert "PIP_CONSTRAINT=/etc/farl/constraints.txt" in " ".join(STAGES["base"].all("ENV", STAGES))


def test_pip_only_ever_installs_into_the_venv():
    text = DOCKERFILE.read_text()
    assert "break-system-packages" not in text.lower() and "PIP_BREAK_SYSTEM_PACKAGES" not in text
    assert "python3 -m venv --system-site-packages" in text
    assert any(args.startswith("PATH=/opt/farl-venv/bin:") for args in STAGES["base"].all("ENV", STAGES))
    for image in IMAGES:
        rosdep = [line for line in run_lines(STAGES[image]) if "rosdep install" in line]
        assert rosdep, f"{image}: no rosdep step"
        assert all("--as-root pip:false" in line for line in rosdep), "rosdep's pip must not run as root (sudo)"
        assert any("--from-paths src" in line for line in rosdep)


def test_rosdep_knows_the_custom_keys():
    assert any("rosdep/farl.yaml" in line and "sources.list.d" in line for line in run_lines(STAGES["base"]))


def test_the_robot_image_has_no_torch():
    robot = STAGES["robot"]
    assert built_packages(robot) == {"farl_common", "farl_control", "farl_teleop", "farl_perception"}
    assert "torch" not in {normalize(p) for p in pip_packages_of(robot)}
    build = [line for line in run_lines(robot) if "colcon build" in line]
    assert build and "--packages-select farl_common farl_control farl_teleop farl_perception" in build[0]


def test_the_learner_image_builds_everything_and_gets_torch_of_the_pinned_version():
    learner = STAGES["learner"]
    assert built_packages(learner) == {"farl_common", "farl_control", "farl_teleop", "farl_perception", "farl_learner"}
    assert "torch" in pip_packages_of(learner)
    assert re.search(r"^torch==[^+]+\+cpu$", CONSTRAINTS.read_text(), re.M), \
        "the TORCH_VARIANT rewrite expects a torch==<version>+cpu pin"
    assert any(args.startswith("TORCH_VARIANT=cpu") for args in learner.all("ARG", STAGES)), "CPU stays the default"


# ---- what the images run ---------------------------------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_the_images_command_names_things_that_exist(image):
    stage = STAGES[image]
    for argv in commands(stage):
        if argv[:2] == ["ros2", "launch"]:
            package, launch_file = argv[2], argv[3]
            assert package == "farl_control" and (REPO / "launch" / launch_file).is_file(), argv
            used = {token.split(":=")[0] for token in argv[4:] if ":=" in token}
            assert used <= stack_arguments(), f"unknown launch arguments {used - stack_arguments()}"
        elif argv[:2] == ["ros2", "run"]:
            package, executable = argv[2], argv[3]
            assert package in built_packages(stage), f"{image} runs {package}, which it does not build"
            assert executable in console_scripts(package), f"{package} installs no executable {executable}"
            if executable == "farl":
                assert argv[4] in SUBCOMMANDS, f"farl has no subcommand {argv[4]}"
        else:
            pytest.fail(f"{image}: unrecognised command {argv}")


def test_the_robot_image_runs_the_real_arm_robot_side_only():
    (argv,) = commands(STAGES["robot"])
    assert "robot:=real" in argv and "autonomy:=false" in argv


# ---- compose ------------------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.mark.parametrize("service", ["robot", "learner"])
def test_compose_services_use_host_network_and_ipc_and_build_a_stage(service):
    spec = compose()["services"][service]
    assert spec["network_mode"] == "host" and spec["ipc"] == "host"
    assert spec["build"]["target"] in STAGES and spec["build"]["dockerfile"] == "docker/Dockerfile"
    assert (COMPOSE.parent / spec["build"]["context"] / spec["build"]["dockerfile"]).is_file()
    assert spec["environment"]["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_compose_gives_the_robot_real_time_limits_and_its_devices():
    robot = compose()["services"]["robot"]
    assert robot["ulimits"] == {"rtprio": 99, "memlock": -1}
    assert "SYS_NICE" in robot["cap_add"]
    assert "/dev/bus/usb:/dev/bus/usb" in robot["devices"]
    assert any(rule.startswith("c 189:") for rule in robot["device_cgroup_rules"])  # USB hot-plug (RealSense)
    assert "/dev/input:/dev/input" in robot["volumes"]  # SpaceMouse


def test_the_learner_image_gets_the_torch_variant_from_compose():
    assert compose()["services"]["learner"]["build"]["args"]["TORCH_VARIANT"] == "${TORCH_VARIANT:-cpu}"
    gpu = yaml.safe_load((REPO / "docker" / "compose.gpu.yaml").read_text())
    assert gpu["services"]["learner"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
