"""Face access inside the hub: the `face:` section of the site file, started and
stopped with the hub.

`HubService` imports this module only when the site file has a `face:`
section, so a hub without face access never imports NumPy, OpenCV or a TFLite
runtime. Here the section is validated (`hub.face.config.load_face_config`),
the unlock publisher is connected to the site broker, one `FaceAccessService`
per entrance is built with the hub's own sinks (alarms into the outbox, events
into the access log) and each runs its camera as a task. Model loading and the
publisher's first connect block, so they run in a worker thread with a timeout.
Lock keys stay inside the face package; nothing here logs them.
"""
import asyncio
import logging

from hub import ConfigError, HubError

log = logging.getLogger("anju.hub.face")

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


def load(section):
    """The validated `FaceConfig` of a site file's `face:` mapping (ConfigError if not)."""
    try:
        from hub.face.config import load_face_config
        from hub.face.errors import ConfigError as FaceConfigError
    except ImportError as exc:
        raise ConfigError("face: the site file enables face access but the face packages are "
                          "not installed (pip install -r requirements-face.txt): %s" % exc) from exc
    try:
        return load_face_config(section)
    except FaceConfigError as exc:
        # the file and the line where the section starts; the message names the field
        at = section.where() if hasattr(section, "where") else "<config>"
        raise ConfigError("%s: %s" % (at, exc)) from exc


class FaceAccessHost:
    """The running face-access services of one hub, and what the HTTP API needs."""

    def __init__(self, cfg, site, clock, mqtt_host, mqtt_port, alarm_sink, event_sink,
                 login=None, lock_ctl=None):
        self.cfg = cfg
        self.lock_ctl = lock_ctl  # fn(lock, person_id): the hub's LOCK_CTL for a smart lock
        self.login = login  # the hub's site-broker login (hub/ingest/login.py)
        self.site = site
        self.clock = clock
        self.mqtt_host, self.mqtt_port = mqtt_host, int(mqtt_port)
        self.alarms = alarm_sink
        self.events = event_sink
        self.publisher = None
        self.services = []
        self.tasks = []
        self.pipeline = None
        self.gallery = None
        self.source_reports = []

    @property
    def match_threshold(self):
        return self.cfg.access.match_threshold

    @property
    def entrances(self):
        return [e.id for e in self.cfg.entrances]

    def _report(self, source, message):
        # A camera failure is reported, the source reopens itself with a back-off.
        self.source_reports.append((source, message))
        del self.source_reports[:-50]
        log.warning("face camera: %s: %s", source, message)

    def _build(self):
        from hub.face.config import build_services
        from hub.face.gallery import Gallery
        from hub.face.pipeline import FacePipeline, PipelineConfig
        from hub.face.service import LockPublisher

        publisher = LockPublisher(self.mqtt_host, self.mqtt_port,
                                  "anju-hub-%s-face" % self.site.site_id, login=self.login)
        publisher.start()
        self.publisher = publisher
        for spec in self.cfg.entrances:
            dev = self.site.devices.get(spec.lock)
            if spec.lock_key is None and (dev is None or dev.kind != "smart_lock"):
                raise ConfigError("face entrance %s: lock %s is not a smart_lock of the site; "
                                  "give lock_key_hex for a lock of the JSON protocol"
                                  % (spec.id, spec.lock))
        built = build_services(self.cfg, self.site.site_id, self.clock, self.alarms, self.events,
                               publisher, self._report, self.lock_ctl)
        if built:
            self.pipeline, self.gallery = built[0][0].pipeline, built[0][0].gallery
        else:  # no camera yet: enrollment over HTTP still works
            cfg = self.cfg
            self.pipeline = FacePipeline(PipelineConfig(cfg.embedding_model, cfg.antispoof_model,
                                                        cfg.detector_ranges, cfg.runtime,
                                                        cfg.num_threads))
            self.gallery = Gallery(cfg.gallery, cfg.store_photos)
        return built

    async def start(self):
        from hub.face.errors import FaceError
        loop = asyncio.get_running_loop()
        try:
            built = await asyncio.wait_for(loop.run_in_executor(None, self._build), START_TIMEOUT_S)
        except asyncio.TimeoutError as exc:
            raise HubError("face access did not start within %.0f s" % START_TIMEOUT_S) from exc
        except FaceError as exc:
            raise HubError("face access cannot start: %s" % exc) from exc
        for service, source in built:
            self.services.append(service)
            task = asyncio.create_task(service.run(source.frames()),
                                       name="face-%s" % service.entrance.entrance)
            task.add_done_callback(self._task_done)
            self.tasks.append(task)
        log.info("face access started", extra={"entrances": len(built),
                                               "models": str(self.pipeline.versions)})

    def _task_done(self, task):
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("face access task %s failed: %r", task.get_name(), exc, exc_info=exc)
        else:
            log.info("face camera %s ended", task.get_name())

    async def stop(self):
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # already logged by _task_done
                pass
        self.tasks = []
        loop = asyncio.get_running_loop()
        # Closing joins the inference threads; they may be waiting on this loop,
        # so the loop must keep running while they finish.
        await asyncio.wait_for(loop.run_in_executor(None, self._close), STOP_TIMEOUT_S)

    def _close(self):
        for service in self.services:
            service.close()
        self.services = []
        if self.publisher is not None:
            self.publisher.stop()
            self.publisher = None
        if self.gallery is not None:
            self.gallery.close()
            self.gallery = None
