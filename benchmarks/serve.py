"""``python -m benchmarks.serve``: the Streamlit server's memory under concurrent browser sessions.

Why a script and not a test: resident memory and seconds depend on the machine, on what else it
runs and on the Streamlit version, so they are measured and printed, never asserted. The script
starts the real app (``streamlit run app/main.py``, through ``benchmarks.launch``), drives
headless Chromium windows through the page as people would, and samples the RSS of the server's
process tree (``/proc/<pid>/status`` VmRSS) every half second. Chromium's own memory never counts.

Two phases, each on a fresh server:

1. reference: one window, every workload alone in turn; the grid image each one ends on is
   hashed, and the RSS peak during each workload and the RSS after it are kept;
2. concurrent: a first page load alone (the models load), then ``sessions`` windows at once,
   workloads assigned round-robin; the peak RSS; the browser quits so the server sees every
   session disconnect; RSS right after, then through ``idle_seconds`` of idling (minimum, last).
   Each session's grid is hashed and compared with the reference: concurrency must not change
   a single byte of what a user sees.

The second phase needs its own server because the engine caches maps across sessions: on the
reference server the concurrent sessions would only read the cache.

GB here are 10^9 bytes.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from app import labels
from app.labels import Widget
from benchmarks.launch import Server, chromium, streamlit_server
from cam.engine.methods import METHODS
from safe_io.paths import SAMPLE_IMAGES
from scaled_models.cli.argtypes import (
    assignment,
    comma_separated,
    non_negative_float,
    positive_int,
)
from scaled_models.ladders import LADDERS
from scaled_models.table7 import MODEL_KEYS

if TYPE_CHECKING:  # selenium is imported late: the module imports without it
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

PEAK_GOAL_GB = 3.0
IDLE_GOAL_GB = 2.5
# every grad-cam library method a visitor would run on a CPU (the slow ones take minutes)
LIBRARY_METHODS = tuple(key for key, m in METHODS.items() if m.library_class and not m.slow)
CLASS_WORKLOAD = "cam-class"
EXPORT_WORKLOAD = "export"
SCORE_CAM_WORKLOAD = "score-cam-448"  # the slowest, largest request: Score-CAM at 448 px
LARGE_PNG_WORKLOAD = "large-png"  # an upload just under the decoder's pixel limit
RESNET_WORKLOAD = "resnet"  # the resnet ladder: five ResNets (0.76 GB of weights) resident
WORKLOADS = LIBRARY_METHODS + (CLASS_WORKLOAD, EXPORT_WORKLOAD, SCORE_CAM_WORKLOAD,
                               LARGE_PNG_WORKLOAD, RESNET_WORKLOAD)
# 10000×9999 = 99.99 megapixels, just under safe_io.images' 100-megapixel limit; RGBA so that the
# decoder also composites it on white
LARGE_PNG_SIZE = (10_000, 9_999)


@dataclass(frozen=True)
class PageMap:
    """Streamlit's markup, which changes only with Streamlit versions, and what this script
    chooses on the page. The app's own words (widget keys and labels, tabs, status texts,
    download names) are not copied here: ``app.labels`` exports them and the app draws with
    them."""

    app: str = "[data-testid='stApp']"
    script_state_attribute: str = "data-test-script-state"
    script_idle: str = "notRunning"
    widget_by_key: str = ".st-key-{key}"
    widget_by_label: str = ("//*[@data-testid='stElementContainer'][.//*[@data-testid="
                            "'stWidgetLabel'][normalize-space()='{label}']]")
    status_box: str = "[data-testid='stExpander']"  # st.status renders as an expander
    grid_image: str = ("//*[@data-testid='stImage'][not(ancestor::*[@data-testid='stTabs'])]"
                       "//img")  # the only st.image outside tabs (val thumbnails are in a tab)
    exception: str = "[data-testid='stException']"
    tab: str = "//*[@role='tab'][normalize-space()='{label}']"
    listbox_option: str = "[role='option']"
    selectbox_field: str = "input"  # inside a selectbox's container: type here to filter
    slider_field: str = "input[type='range']"  # a slider's thumb, takes arrow and End keys
    file_field: str = "input[type='file']"
    button: str = "button"
    radio_option: str = ".//*[@data-testid='stRadioOption'][normalize-space()='{label}']"
    sidebar_caption: str = "[data-testid='stSidebar'] [data-testid='stCaptionContainer']"
    error: str = "[data-testid='stAlert']"
    # what the workloads choose
    chosen_class: str = "n03733281"  # maze, Figure 7's second row; typed to filter the classes
    export_dpi: int = 600  # the slider's last option: over the default export cap, refused
    exported_dpi: int = 200  # the slider's third option (Home, then two steps right)
    slow_method: str = "scorecam"  # runs the model once per feature channel
    slow_model: str = "resolution"  # the 448 px model: the most pixels per forward pass


PAGE = PageMap()
DOWNLOADS = (labels.GRID_PNG.widget, labels.GRID_PDF.widget, labels.PANELS_ZIP.widget)
DOWNLOADED = (labels.GRID_PNG.file_name, labels.GRID_PDF.file_name, labels.PANELS_ZIP.file_name)


# --- Resident memory of a process tree, from /proc -------------------------------------------

def vmrss_kb(status_text: str) -> int:
    """VmRSS of a ``/proc/<pid>/status`` text, in kB (0 for a zombie, which has no VmRSS)."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def parent_pid(stat_text: str) -> int:
    """The ppid field of ``/proc/<pid>/stat``; parsed after the last ')' because the command
    name in parentheses may itself contain spaces and parentheses."""
    return int(stat_text[stat_text.rindex(")") + 2:].split()[1])


def process_tree(root: int, parents: dict[int, int]) -> list[int]:
    """``root`` and all its descendants, given every live process's parent."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_rss_bytes(root: int, proc: Path = Path("/proc")) -> int:
    """RSS of ``root`` and its children (a server may spawn helpers); processes that exit while
    being read simply count as zero."""
    parents = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = parent_pid((entry / "stat").read_text())
            except (OSError, ValueError):
                continue
    total = 0
    for pid in process_tree(root, parents):
        try:
            total += vmrss_kb((proc / str(pid) / "status").read_text())
        except OSError:
            continue
    return total * 1024


class RssSampler:
    """Samples a process tree's RSS every ``interval`` seconds on a daemon thread; phases are
    marked by name so peaks and minima can be taken between marks afterwards."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.start = time.monotonic()
        self.samples: list[tuple[float, int]] = []
        self.marks: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> int:
        """Take one sample now (also used to pin a value exactly at a mark)."""
        rss = tree_rss_bytes(self.pid)
        with self._lock:
            self.samples.append((time.monotonic() - self.start, rss))
        return rss

    def mark(self, name: str) -> float:
        self.marks[name] = time.monotonic() - self.start
        return self.marks[name]

    def between(self, start: str, end: str | None = None) -> list[int]:
        """RSS values sampled from mark ``start`` up to mark ``end`` (or now)."""
        t0, t1 = self.marks[start], self.marks.get(end, float("inf"))
        with self._lock:
            return [rss for t, rss in self.samples if t0 <= t <= t1]

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join(timeout=5)
        return list(self.samples)


def gb(value: int) -> float:
    return round(value / 1e9, 3)


# --- Reading and driving the page ----------------------------------------------------------

def _by():
    """Selenium's locator kinds, imported late: the module imports without selenium."""
    from selenium.webdriver.common.by import By

    return By


def find_widget(driver: WebDriver, widget: Widget) -> WebElement:
    """The element container of a widget: by key, else by its visible label."""
    by = _by()
    found = driver.find_elements(by.CSS_SELECTOR, PAGE.widget_by_key.format(key=widget.key))
    found = found or driver.find_elements(by.XPATH, PAGE.widget_by_label.format(label=widget.label))
    if not found:
        raise LookupError(f"no widget {widget.label!r} (key {widget.key!r}) on the page")
    return found[0]


def text_of(element: WebElement) -> str:
    """All text of an element, also inside tabs not shown (selenium's ``.text`` is only what is
    visible)."""
    return element.get_attribute("textContent") or ""


def has_widget(driver: WebDriver, widget: Widget) -> bool:
    try:
        find_widget(driver, widget)
    except LookupError:
        return False
    return True


def script_idle(driver: WebDriver) -> bool:
    state = driver.find_element(_by().CSS_SELECTOR, PAGE.app).get_attribute(
        PAGE.script_state_attribute)
    return state == PAGE.script_idle


def status_text(driver: WebDriver) -> str:
    return " ".join(text_of(e) for e in driver.find_elements(_by().CSS_SELECTOR, PAGE.status_box))


def grid_src(driver: WebDriver) -> str | None:
    images = driver.find_elements(_by().XPATH, PAGE.grid_image)
    return images[0].get_attribute("src") if images else None


def page_error(driver: WebDriver) -> str | None:
    """What the page shows when the app failed, else None."""
    errors = driver.find_elements(_by().CSS_SELECTOR, PAGE.exception)
    if errors:
        return text_of(errors[0])[:500]
    if labels.MAPS_FAILED in status_text(driver):
        return labels.MAPS_FAILED
    return None


def maps_ready(driver: WebDriver) -> bool:
    """The script has finished and the grid of the current choices is on the page."""
    return (script_idle(driver) and labels.MAPS_READY in status_text(driver)
            and grid_src(driver) is not None)


def wait_until(condition: Callable[[], object], timeout: float, what: str,
               interval: float = 0.25):
    """Poll ``condition`` until it is truthy; TimeoutError naming ``what`` otherwise."""
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (WebDriverException, LookupError):
            value = None  # the page is re-rendering
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def pick_option(texts: Sequence[str], wanted: str) -> int | None:
    """Index of the option whose text is ``wanted``, else of the only one containing it."""
    if wanted in texts:
        return list(texts).index(wanted)
    containing = [i for i, text in enumerate(texts) if wanted in text]
    return containing[0] if len(containing) == 1 else None


def choose(driver: WebDriver, widget: Widget, wanted: str) -> None:
    """A selectbox: type ``wanted`` to filter the list, then click the matching option."""
    from selenium.webdriver.common.keys import Keys

    field_ = find_widget(driver, widget).find_element(_by().CSS_SELECTOR, PAGE.selectbox_field)
    field_.click()
    field_.send_keys(Keys.CONTROL, "a")
    field_.send_keys(wanted)

    def option():
        options = driver.find_elements(_by().CSS_SELECTOR, PAGE.listbox_option)
        index = pick_option([o.text for o in options], wanted)
        return options[index] if index is not None else None

    wait_until(option, 30, f"option {wanted!r} of {widget.label!r}").click()


def keep_only(driver: WebDriver, widget: Widget, wanted: str, chosen: int) -> None:
    """A multiselect of ``chosen`` chosen options down to one: Backspace removes the last
    chosen one until none is left, then ``wanted`` is typed and Enter picks it (as a keyboard
    user would)."""
    from selenium.webdriver.common.keys import Keys

    field_ = find_widget(driver, widget).find_element(_by().CSS_SELECTOR, PAGE.selectbox_field)
    field_.click()
    field_.send_keys(*[Keys.BACKSPACE] * chosen)
    field_.send_keys(wanted)
    wait_until(lambda: pick_option([o.text for o in driver.find_elements(
        _by().CSS_SELECTOR, PAGE.listbox_option)], wanted) is not None, 30,
        f"option {wanted!r} of {widget.label!r}")
    field_.send_keys(Keys.ENTER, Keys.ESCAPE)


def choose_radio(driver: WebDriver, widget: Widget, wanted: str) -> None:
    find_widget(driver, widget).find_element(
        _by().XPATH, PAGE.radio_option.format(label=wanted)).click()


def slide_to_end(driver: WebDriver, widget: Widget) -> None:
    """A (select_)slider to its last option with the End key, as a keyboard user would."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    thumb = find_widget(driver, widget).find_element(_by().CSS_SELECTOR, PAGE.slider_field)
    driver.execute_script("arguments[0].focus()", thumb)
    ActionChains(driver).send_keys(Keys.END).perform()


def slide_to_option(driver: WebDriver, widget: Widget, position: int) -> None:
    """A select_slider to its ``position``-th option (0 = first): Home, then right arrows."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    thumb = find_widget(driver, widget).find_element(_by().CSS_SELECTOR, PAGE.slider_field)
    driver.execute_script("arguments[0].focus()", thumb)
    ActionChains(driver).send_keys(Keys.HOME, *[Keys.ARROW_RIGHT] * position).perform()


def alerts(driver: WebDriver) -> str:
    return " ".join(text_of(e) for e in driver.find_elements(_by().CSS_SELECTOR, PAGE.error))


def downloads_done(folder: Path) -> bool:
    """Every file the export session asked for is in the browser's download folder."""
    return all((folder / name).is_file() for name in DOWNLOADED) and not list(
        folder.glob("*.crdownload"))


def open_tab(driver: WebDriver, label: str) -> None:
    driver.find_element(_by().XPATH, PAGE.tab.format(label=label)).click()


def click_button(driver: WebDriver, widget: Widget) -> None:
    find_widget(driver, widget).find_element(_by().CSS_SELECTOR, PAGE.button).click()


def fetch_sha256(base_url: str, src: str, timeout: float = 60) -> str:
    """Hash of what the server sends for an image URL of the page (a media file)."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(urljoin(base_url + "/", src), timeout=timeout) as reply:
        for chunk in iter(lambda: reply.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- Workloads -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One user action and the page state that shows the app has answered it. ``done`` gets the
    grid URL from before the action, so a stale grid is never taken for the new one."""

    name: str
    act: Callable[[object], None]
    done: Callable[[object, str | None], bool]


def _grid_changed(driver: WebDriver, before: str | None) -> bool:
    return maps_ready(driver) and grid_src(driver) != before


def upload_files(driver: WebDriver, files: Sequence[Path]) -> None:
    open_tab(driver, labels.UPLOAD_TAB)
    find_widget(driver, labels.UPLOADS).find_element(
        _by().CSS_SELECTOR, PAGE.file_field).send_keys("\n".join(map(str, files)))


def workload_steps(workload: str, url: str, uploads: Sequence[Path],
                   export_images: int, downloads_folder: Path = Path("."),
                   large_png: Path | None = None) -> list[Step]:
    """What one session does. Every workload opens the page first (the default grid: exact CAM
    of the bundled photos), then:

    - a gradient method: choose it in the sidebar;
    - ``cam-class``: exact CAM of one chosen class for all models;
    - ``export``: Export DPI to its maximum and photos uploaded up to ``export_images`` in the
      grid, which the server refuses to export (over its pixel cap, with a message); then a DPI
      it accepts, and the PNG, PDF and panel zip downloaded (each made on the click);
    - ``score-cam-448``: one bundled photo, the resolution model alone, then Score-CAM (one
      forward pass per feature channel at 448 px: minutes on a CPU);
    - ``large-png``: ``large_png`` (a 10000×9999 RGBA PNG) uploaded beside the bundled photos;
    - ``resnet``: the resnet ladder chosen (its files must be in the server's torch hub cache,
      e.g. ``--server-env TORCH_HOME=…``, for its networks to load and cost memory).
    """
    steps = [Step("open page", lambda d: d.get(url), lambda d, _: maps_ready(d))]
    if workload in LIBRARY_METHODS:
        label = METHODS[workload].menu_label
        steps.append(Step(f"method {label}", lambda d: choose(d, labels.METHOD, label),
                          _grid_changed))
    elif workload == CLASS_WORKLOAD:
        steps += [
            Step("target: one class", lambda d: choose_radio(
                d, labels.TARGET_MODE, labels.ONE_CLASS_MODE), _grid_changed),
            Step(f"class {PAGE.chosen_class}", lambda d: choose(
                d, labels.TARGET_CLASS, PAGE.chosen_class), _grid_changed)]
    elif workload == EXPORT_WORKLOAD:
        images_shown = labels.images_shown(export_images)
        folder = downloads_folder

        def download(driver: WebDriver) -> None:
            for widget in DOWNLOADS:
                click_button(driver, widget)

        steps += [
            Step(f"export DPI {PAGE.export_dpi}", lambda d: slide_to_end(d, labels.DPI),
                 lambda d, _: script_idle(d)),
            Step(f"upload {len(uploads)} photos", lambda d: upload_files(d, uploads),
                 lambda d, _: maps_ready(d) and images_shown in status_text(d)),
            Step(f"export at {PAGE.export_dpi} DPI refused",
                 lambda d: open_tab(d, labels.EXPORT_TAB),
                 lambda d, _: script_idle(d) and labels.MAX_EXPORT_ENV in alerts(d)),
            Step(f"export DPI {PAGE.exported_dpi}",
                 lambda d: slide_to_option(d, labels.DPI, 2),
                 lambda d, _: script_idle(d) and has_widget(d, DOWNLOADS[0])),
            Step("download PNG, PDF and panels", download,
                 lambda d, _: downloads_done(folder))]
    elif workload == SCORE_CAM_WORKLOAD:
        photos = bundled_photo_ids()
        photo = photos[0]
        label = METHODS[PAGE.slow_method].menu_label
        one_model = labels.models_shown([PAGE.slow_model])
        steps += [
            Step(f"photo {photo} only", lambda d: keep_only(d, labels.PHOTOS, photo, len(photos)),
                 lambda d, _: maps_ready(d) and labels.images_shown(1)
                 in status_text(d)),
            Step(f"model {PAGE.slow_model} only",
                 lambda d: keep_only(d, labels.MODELS, PAGE.slow_model, len(MODEL_KEYS)),
                 lambda d, _: maps_ready(d) and one_model in status_text(d)),
            Step(f"method {label}", lambda d: choose(d, labels.METHOD, label), _grid_changed)]
    elif workload == RESNET_WORKLOAD:
        title = LADDERS["resnet"].title
        steps.append(Step(f"ladder {title}", lambda d: choose(d, labels.LADDER, title),
                          _grid_changed))
    elif workload == LARGE_PNG_WORKLOAD:
        if large_png is None:
            raise ValueError(f"the {LARGE_PNG_WORKLOAD} workload needs the PNG to upload")
        shown = labels.images_shown(bundled_photo_count() + 1)
        steps.append(Step(f"upload {large_png.name}", lambda d: upload_files(d, [large_png]),
                          lambda d, _: maps_ready(d) and shown in status_text(d)))
    else:
        raise ValueError(f"unknown workload {workload!r}; choose from {', '.join(WORKLOADS)}")
    return steps


def write_uploads(folder: Path, count: int) -> list[Path]:
    """``count`` photos for the export session to upload: the bundled samples with a one-pixel
    change each (distinct content, so the app neither deduplicates nor serves them from cache)."""
    from benchmarks.engine import bench_images

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image in bench_images(count):
        path = folder / f"upload-{image.image_id}.png"
        image.image.save(path)
        paths.append(path)
    return paths


def write_large_png(path: Path) -> Path:
    """A 10000×9999 RGBA PNG that compresses to a few hundred KB (bands of four colours, one
    half transparent), the kind of upload that costs gigabytes if decoded at full size."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", LARGE_PNG_SIZE, (40, 90, 160, 255))
    draw = ImageDraw.Draw(image)
    width, height = LARGE_PNG_SIZE
    for top in range(0, height, 1000):
        draw.rectangle((0, top, width, top + 499), fill=(230, 180, 60, 128))
    draw.ellipse((2000, 2000, 8000, 8000), fill=(200, 40, 40, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, compress_level=9)
    return path


def bundled_photo_ids() -> list[str]:
    """Photos the page selects by default (every image of sample_images/)."""
    from cam.engine.inputs import collect_images

    return [image.image_id for image in collect_images([SAMPLE_IMAGES]).images]


def bundled_photo_count() -> int:
    return len(bundled_photo_ids())


@dataclass
class Session:
    """One browser window running one workload step by step."""

    index: int
    workload: str
    steps: list[Step]
    window: str | None = None
    step: int = 0
    waiting_since: float | None = None  # the current step's action was done at this time
    grid_before: str | None = None
    step_seconds: list[tuple[str, float]] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    grid: str | None = None  # the grid URL the workload ended on

    @property
    def over(self) -> bool:
        return self.error is not None or self.step >= len(self.steps)


def advance(driver: WebDriver, session: Session, step_timeout: float) -> None:
    """Do the session's next action, or check whether the app has answered the last one."""
    from selenium.common.exceptions import WebDriverException

    step = session.steps[session.step]
    now = time.monotonic()
    try:
        if session.waiting_since is None:
            session.started = session.started or now
            session.grid_before = grid_src(driver) if session.step else None
            step.act(driver)
            session.waiting_since = time.monotonic()
            return
        error = page_error(driver)
        if error:
            session.error = f"{step.name}: the page shows an error: {error}"
        elif step.done(driver, session.grid_before):
            session.step_seconds.append((step.name, round(now - session.waiting_since, 2)))
            session.step += 1
            session.waiting_since = None
            if session.over:
                session.finished = now
                session.grid = grid_src(driver)
        elif now - session.waiting_since > step_timeout:
            session.error = f"{step.name}: no answer after {step_timeout:.0f} s"
    except (WebDriverException, LookupError) as exc:
        if session.waiting_since is None:  # the action itself failed
            session.error = f"{step.name}: {type(exc).__name__}: {str(exc).splitlines()[0]}"


def drive(driver: WebDriver, server: Server, sessions: Sequence[Session], step_timeout: float,
          deadline: float, until_step: int | None = None, poll: float = 0.5) -> None:
    """Round-robin over the windows until every session is done (or has done ``until_step``
    steps), has failed, ``deadline`` (monotonic) passes or the server dies: actions are sent as
    soon as the previous answer is on the page, so the server works on all sessions at once
    while one browser drives them."""
    def pending(session: Session) -> bool:
        return not session.over and (until_step is None or session.step < until_step)

    while any(pending(s) for s in sessions):
        stop = (None if server.alive() else f"the server exited ({server.process.returncode})")
        if time.monotonic() > deadline:
            stop = "the phase ran out of time"
        if stop:
            for session in filter(pending, sessions):
                session.error = f"{session.steps[session.step].name}: {stop}"
            return
        for session in filter(pending, sessions):
            driver.switch_to.window(session.window)
            advance(driver, session, step_timeout)
        time.sleep(poll)


def session_record(session: Session, base_url: str) -> dict:
    """What the report keeps of a session; its grid is fetched and hashed while it is alive."""
    record = {"session": session.index, "workload": session.workload,
              "steps": session.step_seconds, "error": session.error,
              "seconds": (round(session.finished - session.started, 1)
                          if session.finished and session.started else None),
              "grid_sha256": None}
    if session.grid and not session.error:
        try:
            record["grid_sha256"] = fetch_sha256(base_url, session.grid)
        except OSError as exc:
            record["error"] = f"grid image could not be fetched: {exc}"
    return record


# --- The two phases --------------------------------------------------------------------------

def _log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _family(driver: WebDriver) -> str:
    """The family the sidebar says the server loaded ("Family **lite** — …")."""
    for caption in driver.find_elements(_by().CSS_SELECTOR, PAGE.sidebar_caption):
        words = caption.text.split()
        if len(words) > 1 and words[0] == labels.FAMILY_CAPTION:
            return words[1]
    return "unknown"


def run_reference(workdir: Path, workloads: Sequence[str], uploads: Sequence[Path],
                  export_images: int, step_timeout: float, server_env: dict[str, str],
                  large_png: Path | None = None) -> dict:
    """Every workload alone, one after the other, on one server: the grids to compare with and
    each workload's own RSS peak (the server's earlier caches included, as in real use)."""
    results = {}
    with streamlit_server(workdir, server_env) as server:
        sampler = RssSampler(server.pid)
        try:
            with chromium(workdir / "chrome-reference") as driver:
                for index, workload in enumerate(workloads):
                    session = Session(index, workload, workload_steps(
                        workload, server.url, uploads, export_images,
                        workdir / "chrome-reference" / "downloads", large_png),
                        window=driver.current_window_handle)
                    sampler.mark(workload)
                    drive(driver, server, [session], step_timeout,
                          time.monotonic() + step_timeout * len(session.steps))
                    record = session_record(session, server.url)
                    peak = max(sampler.between(workload), default=0)
                    record.update(peak_gb=gb(peak), after_gb=gb(sampler.sample()))
                    results[workload] = record
                    _log(f"reference {workload}: {record['seconds']} s, peak {gb(peak)} GB"
                         + (f" — {record['error']}" if record["error"] else ""))
        finally:
            sampler.stop()
            if any(r["error"] for r in results.values()):
                _log(f"server log tail:\n{server.log_tail()}")
    return results


def run_concurrent(workdir: Path, plan: Sequence[str], uploads: Sequence[Path],
                   export_images: int, idle_seconds: float, step_timeout: float,
                   phase_timeout: float, server_env: dict[str, str],
                   large_png: Path | None = None) -> dict:
    """A fresh server: first page load alone, then every session at once, then idle."""
    with streamlit_server(workdir, server_env) as server:
        sessions = [Session(i, w, workload_steps(w, server.url, uploads, export_images,
                                                 workdir / "chrome-concurrent" / "downloads",
                                                 large_png))
                    for i, w in enumerate(plan)]
        sampler = RssSampler(server.pid)
        try:
            sampler.mark("start")
            with chromium(workdir / "chrome-concurrent") as driver:
                sessions[0].window = driver.current_window_handle
                drive(driver, server, sessions[:1], step_timeout,
                      time.monotonic() + step_timeout, until_step=1)
                first_load_rss = sampler.sample()
                family = _family(driver)
                _log(f"first page load: {gb(first_load_rss)} GB ({family} family)")
                for session in sessions[1:]:
                    driver.switch_to.new_window("window")
                    session.window = driver.current_window_handle
                sampler.mark("concurrent")
                began = time.monotonic()
                drive(driver, server, sessions, step_timeout, began + phase_timeout)
                concurrent_s = time.monotonic() - began
                records = [session_record(s, server.url) for s in sessions]
                sampler.mark("closing")
            closed_rss = sampler.sample()
            sampler.mark("idle")
            _log(f"all {len(sessions)} sessions closed after {concurrent_s:.0f} s; "
                 f"idling {idle_seconds:.0f} s")
            time.sleep(idle_seconds)
            last_rss = sampler.sample()
        finally:
            timeline = sampler.stop()
            if any(s.error for s in sessions):
                _log(f"server log tail:\n{server.log_tail()}")
    return {
        "family": family, "first_load_gb": gb(first_load_rss),
        "peak_gb": gb(max(sampler.between("concurrent", "closing"), default=0)),
        "closed_gb": gb(closed_rss), "idle_min_gb": gb(min(sampler.between("idle"))),
        "idle_last_gb": gb(last_rss), "concurrent_seconds": round(concurrent_s, 1),
        "sessions": records,
        "timeline": [(round(t, 1), round(rss / 1e6)) for t, rss in timeline],  # (s, MB)
        "marks": {name: round(t, 1) for name, t in sampler.marks.items()},
    }


def run_serve_bench(sessions: int = len(WORKLOADS), idle_seconds: float = 60,
                    workloads: Sequence[str] = WORKLOADS, export_images: int = 36,
                    reference: bool = True, step_timeout: float = 1800,
                    phase_timeout: float = 3600, server_env: dict[str, str] | None = None
                    ) -> dict:
    """The whole measurement as one dict (the ``--json`` output).

    ``workloads`` are assigned round-robin to the ``sessions``; ``reference=False`` skips the
    single-session runs (faster, but then nothing checks the grids). ``server_env`` is added to
    the server's environment, e.g. to try allocator settings without touching the app.
    """
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown or not workloads or sessions < 1:
        raise ValueError(f"need ≥ 1 session and workloads from {', '.join(WORKLOADS)}; "
                         f"got {sessions} and {', '.join(workloads) or 'none'}")
    plan = [workloads[i % len(workloads)] for i in range(sessions)]
    if EXPORT_WORKLOAD in plan and export_images <= bundled_photo_count():
        raise ValueError(f"the export needs more than the {bundled_photo_count()} bundled photos "
                         "(the rest are uploaded)")
    began = time.monotonic()
    server_env = dict(server_env or {})
    with tempfile.TemporaryDirectory(prefix="scalecam-serve-bench-") as tmp:
        workdir = Path(tmp)
        uploads = (write_uploads(workdir / "uploads", export_images - bundled_photo_count())
                   if EXPORT_WORKLOAD in plan else [])
        large_png = (write_large_png(workdir / "uploads" / "large-rgba.png")
                     if LARGE_PNG_WORKLOAD in plan else None)
        references = {}
        if reference:
            _log(f"reference: {', '.join(dict.fromkeys(plan))}, one at a time")
            references = run_reference(workdir, list(dict.fromkeys(plan)), uploads,
                                       export_images, step_timeout, server_env, large_png)
        _log(f"concurrent: {sessions} sessions ({', '.join(plan)})")
        result = run_concurrent(workdir, plan, uploads, export_images, idle_seconds,
                                step_timeout, phase_timeout, server_env, large_png)
    errors = ([f"{r['workload']} (reference): {r['error']}" for r in references.values()
               if r["error"]] + [f"session {r['session']} ({r['workload']}): {r['error']}"
                                 for r in result["sessions"] if r["error"]])
    mismatches = []
    for record in result["sessions"]:
        expected = references.get(record["workload"], {}).get("grid_sha256")
        record["grid_matches_reference"] = (None if not expected or not record["grid_sha256"]
                                            else record["grid_sha256"] == expected)
        if record["grid_matches_reference"] is False:
            mismatches.append(f"session {record['session']} ({record['workload']})")
    return {
        "sessions": sessions, "workloads": plan, "idle_seconds": idle_seconds,
        "export_images": export_images if EXPORT_WORKLOAD in plan else None,
        "refused_dpi": PAGE.export_dpi, "exported_dpi": PAGE.exported_dpi,
        "cpus": os.cpu_count(), "server_env": server_env,
        **{k: v for k, v in result.items() if k != "sessions"},
        # a failed session did less work than asked: its figures judge nothing
        "peak_under_goal": None if errors else result["peak_gb"] < PEAK_GOAL_GB,
        "idle_under_goal": None if errors else result["idle_min_gb"] < IDLE_GOAL_GB,
        "reference": references, "concurrent_sessions": result["sessions"],
        "errors": errors, "mismatches": mismatches,
        "total_seconds": round(time.monotonic() - began, 1),
    }


def format_report(result: dict) -> str:
    """The short human report: the figures the issue's goals are about, then the details."""
    yes_no = {True: "yes", False: "NO", None: "not judged, a session failed"}
    lines = [f"scalecam serve-bench — {result['sessions']} concurrent sessions, "
             f"{result['family']} family, {result['cpus']} CPUs"
             + (f", {result['export_images']}-image export (refused at {result['refused_dpi']} "
                f"DPI by the pixel cap, then made at {result['exported_dpi']} DPI)"
                if result["export_images"] else ""),
             f"  workloads (round-robin): {', '.join(result['workloads'])}"]
    if result["server_env"]:
        lines.append("  server environment: " + " ".join(
            f"{k}={v}" for k, v in result["server_env"].items()))
    if result["reference"]:
        lines.append("  reference, each workload alone (one server, in this order):")
        for name, record in result["reference"].items():
            lines.append(f"    {name:<10} {record['seconds'] or '-':>7} s   "
                         f"peak {record['peak_gb']:.2f} GB   after {record['after_gb']:.2f} GB")
    lines += [
        "  concurrent (fresh server):",
        f"    RSS after the first page load (models loaded): {result['first_load_gb']:.2f} GB",
        f"    peak RSS, {result['sessions']} sessions at once: {result['peak_gb']:.2f} GB   "
        f"(goal < {PEAK_GOAL_GB} GB: {yes_no[result['peak_under_goal']]})",
        f"    RSS right after every session closed:  {result['closed_gb']:.2f} GB",
        f"    RSS over {result['idle_seconds']:.0f} s idle: min {result['idle_min_gb']:.2f} GB, "
        f"last {result['idle_last_gb']:.2f} GB   (goal < {IDLE_GOAL_GB} GB within a minute: "
        f"{yes_no[result['idle_under_goal']]})",
        f"    all sessions done in {result['concurrent_seconds']:.0f} s:"]
    for record in result["concurrent_sessions"]:
        match = {True: "grid = reference", False: "GRID DIFFERS", None: "grid not compared"}[
            record["grid_matches_reference"]]
        lines.append(f"      #{record['session']} {record['workload']:<10} "
                     f"{record['seconds'] or '-':>7} s   {match}")
    lines.append(f"  grid mismatches: {', '.join(result['mismatches']) or 'none'}")
    lines += [f"  error: {e}" for e in result["errors"]]
    lines.append(f"  total run: {result['total_seconds'] / 60:.1f} min")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser, with_json: bool = True) -> None:
    """The options, for this module's ``main`` and for whichever command hosts it (a host that
    has its own ``--json`` passes ``with_json=False``)."""
    parser.add_argument("--sessions", type=positive_int, default=len(WORKLOADS),
                        help=f"concurrent browser sessions (default {len(WORKLOADS)}: one per "
                             "workload)")
    parser.add_argument("--idle-seconds", type=non_negative_float, default=60,
                        help="how long to watch RSS after every session closed (default 60)")
    parser.add_argument("--workloads", type=comma_separated(WORKLOADS, "workload"),
                        default=list(WORKLOADS),
                        help="comma-separated, assigned round-robin to the sessions "
                             f"(default {','.join(WORKLOADS)})")
    parser.add_argument("--export-images", type=positive_int, default=36,
                        help="images in the grid the export session exports (default 36)")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the single-session runs (and so the grid comparison)")
    parser.add_argument("--step-timeout", type=non_negative_float, default=1800,
                        help="seconds one page action may take (default 1800: Score-CAM at "
                             "448 px beside the other sessions takes many minutes on a CPU)")
    parser.add_argument("--phase-timeout", type=non_negative_float, default=3600,
                        help="seconds all concurrent sessions together may take (default 3600)")
    parser.add_argument("--server-env", type=assignment, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="extra environment for the server, to try settings without "
                             "touching the app, e.g. MALLOC_MMAP_THRESHOLD_=1048576 (repeatable; "
                             "default: none)")
    if with_json:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options; exit status 1 if a session failed or a grid differed."""
    server_env = dict(args.server_env)
    result = run_serve_bench(
        sessions=args.sessions, idle_seconds=args.idle_seconds,
        workloads=args.workloads,
        export_images=args.export_images, reference=not args.no_reference,
        step_timeout=args.step_timeout, phase_timeout=args.phase_timeout,
        server_env=server_env)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 1 if result["errors"] or result["mismatches"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
