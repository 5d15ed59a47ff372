"""Static checks of the Hugging Face Spaces in hosting/: no Docker engine runs on the build machines,
so a Space's first build is where a wrong port, a missing file or a baked-in secret would show."""
import importlib.util
import io
import os
import re
import runpy
import shutil
import subprocess
import tarfile

import pytest
import yaml

from stack.services import superset
from lakewatch import settings as settings_module
from lakewatch.settings import REPO_ROOT

HOSTING = REPO_ROOT / "hosting"
SPACES = ("dashboard", "chatbot")
COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}  # what the Hub accepts


def folder(space: str):
    return HOSTING / f"{space}-space"


def instructions(space: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Space's Dockerfile, continuation lines joined, comments dropped."""
    lines = [line for line in (folder(space) / "Dockerfile").read_text().splitlines()
             if not line.lstrip().startswith("#")]
    text = "\n".join(lines).replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def arguments(space: str, instruction: str) -> list[str]:
    return [args for name, args in instructions(space) if name == instruction]


def environment(space: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for args in arguments(space, "ENV") for pair in args.split())


def copy_sources(space: str) -> list[str]:
    return [word for args in arguments(space, "COPY") for word in args.split()[:-1] if not word.startswith("--")]


def front_matter(space: str) -> dict:
    text = (folder(space) / "README.md").read_text()
    assert text.startswith("---\n"), "a Space's README.md starts with its YAML block"
    return yaml.safe_load(text.split("---\n", 2)[1])


def entrypoint(space: str):
    (command,) = arguments(space, "CMD")
    (script,) = yaml.safe_load(command)  # the exec form is a JSON list
    (workdir,) = arguments(space, "WORKDIR")
    return REPO_ROOT / script.removeprefix(workdir + "/")


@pytest.mark.parametrize("space", SPACES)
def test_each_space_readme_declares_a_docker_space_on_the_port_its_dockerfile_exposes(space):
    meta = front_matter(space)
    assert meta["sdk"] == "docker"
    assert {"title", "emoji", "colorFrom", "colorTo", "pinned", "license", "short_description"} <= set(meta)
    assert {meta["colorFrom"], meta["colorTo"]} <= COLORS
    assert isinstance(meta["pinned"], bool) and len(meta["short_description"]) <= 60
    assert arguments(space, "EXPOSE") == [str(meta["app_port"])]


def test_the_dashboard_space_runs_superset_on_its_app_port_on_all_interfaces():
    settings = settings_module.load(environment("dashboard"))
    command = superset.command(settings)
    assert command[command.index("-b") + 1] == f"0.0.0.0:{front_matter('dashboard')['app_port']}"
    assert "superset_command(load())" in entrypoint("dashboard").read_text()


def test_the_chatbot_space_serves_the_chat_page_on_its_app_port_and_starts_rasa_and_the_actions():
    settings = settings_module.load(environment("chatbot"))
    assert (settings.host, settings.chat_port) == ("0.0.0.0", front_matter("chatbot")["app_port"])
    script = entrypoint("chatbot").read_text()
    for service in ("-m chatbot.chat_page", "-m chatbot.rasa_server", "-m chatbot.action_server"):
        assert service in script


@pytest.mark.parametrize("space", SPACES)
def test_a_space_runs_each_module_of_the_repo_with_python_m_from_the_app_root_and_copies_it(space):
    """No script edits sys.path: a Space's start runs lakewatch's modules as `python -m` from the
    app's root (start.sh cds there), and the Dockerfile copies each of them."""
    script = entrypoint(space).read_text()
    assert 'cd "$(dirname "$0")/../.."' in script
    modules = re.findall(r"-m ([a-z_]+(?:\.[a-z_]+)+)", script)
    assert modules and not re.search(r"python3? [\w/]+\.py", script.replace("superset/provision.py", ""))
    copied = copy_sources(space)
    for module in modules:
        path = module.replace(".", "/") + ".py"
        assert (REPO_ROOT / path).is_file(), module
        assert any(path == c or path.startswith(c.rstrip("/") + "/") for c in copied), f"{space} copies no {path}"


@pytest.mark.parametrize("space", SPACES)
def test_the_spaces_read_the_lake_with_duckdb_in_a_state_folder_the_container_user_owns(space):
    settings = settings_module.load(environment(space))
    assert settings.sql_engine == "duckdb"
    home = environment(space)["HOME"]
    assert settings.state_dir.is_relative_to(home) and settings.venv_dir.is_relative_to(home)
    assert re.search(r"--uid 1000\b", " ".join(arguments(space, "RUN"))), "Spaces run the container as uid 1000"
    assert all(args.startswith("--chown=user ") for args in arguments(space, "COPY"))


@pytest.mark.parametrize("space", SPACES)
def test_every_file_a_space_dockerfile_copies_exists_in_the_repo(space):
    # The build context is this repo's root, or a Space clone that make_space.sh fills from it.
    sources = copy_sources(space)
    assert sources and [s for s in sources if not (REPO_ROOT / s).exists()] == []


@pytest.mark.parametrize("space", SPACES)
def test_space_base_images_are_pinned(space):
    for args in arguments(space, "FROM"):
        image = args.split()[0]
        assert re.search(r":\d[\w.-]*$|@sha256:", image) and not image.endswith(":latest"), image


@pytest.mark.parametrize("space", SPACES)
def test_no_secret_is_written_into_a_space_image(space):
    names = [pair.split("=", 1)[0] for args in arguments(space, "ENV") + arguments(space, "ARG")
             for pair in args.split()]
    assert [n for n in names if re.search("PASSWORD|SECRET|KEY|TOKEN", n)] == []


def test_the_dashboard_space_refuses_to_start_without_its_secrets(monkeypatch, capsys):
    # The Space runs the embedded profile (for DuckDB), whose `make up` path defaults the admin to admin/admin:
    # start.sh must not take that path, and provisioning and Superset's config must refuse without secrets.
    assert not re.search("superset_secrets|superset_env|prepare_superset", entrypoint("dashboard").read_text())
    monkeypatch.setattr(os, "environ", {**os.environ, **environment("dashboard")})
    for name in ("SUPERSET_ADMIN_PASSWORD", "SUPERSET_SECRET_KEY"):
        os.environ.pop(name, None)
    spec = importlib.util.spec_from_file_location("provision", REPO_ROOT / "superset" / "provision.py")
    provision = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(provision)
    assert provision.main() == 1
    assert "SUPERSET_ADMIN_PASSWORD is not set" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="SUPERSET_SECRET_KEY"):
        runpy.run_path(str(REPO_ROOT / "superset" / "superset_config.py"))


@pytest.mark.parametrize("script", [f"{space}-space/start.sh" for space in SPACES] + ["make_space.sh"])
def test_each_hosting_script_is_executable_bash_that_parses(script):
    path = HOSTING / script
    assert os.access(path, os.X_OK)
    if shutil.which("git"):  # the Space's clone gets git's mode, not this checkout's
        tracked = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-s", "--", str(path)],
                                 capture_output=True, text=True).stdout
        assert tracked == "" or tracked.startswith("100755"), f"git update-index --chmod=+x {path}"
    assert path.read_text().startswith("#!/usr/bin/env bash\n")
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("space", SPACES)
def test_each_space_entrypoint_is_the_script_its_dockerfile_copies(space):
    assert str(entrypoint(space).relative_to(REPO_ROOT)) in copy_sources(space)


@pytest.mark.parametrize("space", SPACES)
def test_make_space_fills_a_space_clone_with_the_dockerfile_readme_and_every_copied_file(space, tmp_path):
    if not shutil.which("git") or subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse"],
                                                    capture_output=True).returncode:
        pytest.skip("make_space.sh lists files with git: this is not a git checkout")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "lakewatch").mkdir()
    (tmp_path / "lakewatch" / "deleted_since.py").write_text("")
    result = subprocess.run([str(HOSTING / "make_space.sh"), space, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "Dockerfile").read_text() == (folder(space) / "Dockerfile").read_text()
    assert (tmp_path / "README.md").read_text() == (folder(space) / "README.md").read_text()
    assert all((tmp_path / s).exists() for s in copy_sources(space))
    assert not (tmp_path / "lakewatch" / "deleted_since.py").exists()
    assert os.access(tmp_path / entrypoint(space).relative_to(REPO_ROOT), os.X_OK)


def test_docs_hosting_names_each_space_folder_and_the_readme_links_it():
    doc = (REPO_ROOT / "docs" / "hosting.md").read_text()
    for name in [f"hosting/{space}-space/" for space in SPACES] + ["hosting/make_space.sh", "LAKE_SNAPSHOT_URL"]:
        assert name in doc
    assert "(docs/hosting.md)" in (REPO_ROOT / "README.md").read_text()


# hosting/fetch_lake.py, the first step of both Spaces' start.


@pytest.fixture
def fetch_lake():
    spec = importlib.util.spec_from_file_location("fetch_lake", HOSTING / "fetch_lake.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def snapshot(*names: str) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as archive:
        for name in names:
            member = tarfile.TarInfo(name)
            member.size = 2
            archive.addfile(member, io.BytesIO(b"{}"))
    return data.getvalue()


def test_a_start_replaces_the_lake_with_the_snapshot(fetch_lake, tmp_path, monkeypatch):
    (tmp_path / "snapshot.tar.gz").write_bytes(snapshot("lake/bars_1m/_delta_log/00000000000000000000.json"))
    (tmp_path / "state" / "lake" / "old_table").mkdir(parents=True)
    monkeypatch.setenv("LAKEWATCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LAKE_SNAPSHOT_URL", (tmp_path / "snapshot.tar.gz").as_uri())
    assert fetch_lake.main() == 0
    assert [p.name for p in (tmp_path / "state" / "lake").iterdir()] == ["bars_1m"]
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["lake"]  # no unpacking folder left behind


def test_without_a_snapshot_url_a_start_serves_a_mounted_lake_or_stops(fetch_lake, tmp_path, monkeypatch):
    monkeypatch.delenv("LAKE_SNAPSHOT_URL", raising=False)
    monkeypatch.setenv("LAKEWATCH_STATE_DIR", str(tmp_path))
    assert fetch_lake.main() == 1
    (tmp_path / "lake").mkdir()
    assert fetch_lake.main() == 0


@pytest.mark.parametrize("name", ["bars_1m/x.json", "lake/../../escaped.json", "/lake/absolute.json"])
def test_a_snapshot_unpacks_inside_its_lake_folder_only(fetch_lake, tmp_path, name):
    with pytest.raises((ValueError, tarfile.TarError)):
        fetch_lake.unpack(io.BytesIO(snapshot(name)), tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert not (tmp_path.parent / "escaped.json").exists()


def test_the_hf_token_goes_to_huggingface_only_and_not_on_to_its_storage_redirects(fetch_lake):
    hub = fetch_lake.request("https://huggingface.co/datasets/me/lake/resolve/main/lake.tar.gz", "hf_secret")
    assert hub.unredirected_hdrs == {"Authorization": "Bearer hf_secret"} and hub.headers == {}
    elsewhere = fetch_lake.request("https://example.com/lake.tar.gz", "hf_secret")
    assert elsewhere.unredirected_hdrs == {} and elsewhere.headers == {}
    lookalike = fetch_lake.request("https://huggingface.co.example.com/lake.tar.gz", "hf_secret")
    assert lookalike.unredirected_hdrs == {}
