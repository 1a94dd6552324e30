"""distill_trainer: runs a distillation pipeline, started and watched from ROS 2.

Services (``std_srvs/Trigger``): ``~/start`` runs the ``stages`` of ``config_path`` in
``run_dir`` (each stage as ``distill-ros <stage>`` runs it), ``~/stop`` interrupts the
running stage (the run stays resumable), ``~/export`` writes ``export/policy.onnx`` from
the best student. Progress goes to ``/diagnostics`` and to ``~/markers``
(``visualization_msgs/MarkerArray``: a title and one bar per stage for RViz), with the
running stage's latest figures: for DAgger, after every round, ``distill.round``,
``distill.teacher_queries``, ``distill.beta``, ``distill.buffer``, ``distill.last_success``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from distill_ros import ros
from distill_ros.nodes.command_output import diagnostic_array
from distill_ros.nodes.training_job import TrainingJob
from distill_ros.rundir import STAGES

PARAMETERS = {
    "config_path": "config/grasp_quick.yaml",  # pipeline YAML
    "run_dir": "",                             # "": runs/<config name>
    "stages": list(STAGES),                    # what ~/start runs, in order
    "autostart": False,                        # start at once instead of waiting for ~/start
    "progress_rate_hz": 1.0,                   # /diagnostics and ~/markers
    "frame_id": "world",                       # frame of the progress markers
}
STATUS_NAME = "distill_trainer: pipeline"
_COLORS = {"complete": (0.1, 0.8, 0.2), "running": (1.0, 0.8, 0.1),
           "failed": (0.9, 0.1, 0.1), "pending": (0.5, 0.5, 0.5)}


class DistillTrainer(ros.Node):
    """Pipeline runs behind ros2 services, progress in RViz."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("distill_trainer", **kwargs)
        for name, default in PARAMETERS.items():
            self.declare_parameter(name, default)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.job: Optional[TrainingJob] = None
        trigger = ros.get_interface("std_srvs/srv/Trigger")
        self.create_service(trigger, "~/start", self._on_start)
        self.create_service(trigger, "~/stop", self._on_stop)
        self.create_service(trigger, "~/export", self._on_export)
        self._marker = ros.get_interface("visualization_msgs/msg/Marker")
        self._markers = ros.get_interface("visualization_msgs/msg/MarkerArray")
        self._diag_pub = self.create_publisher(
            ros.get_interface("diagnostic_msgs/msg/DiagnosticArray"), "/diagnostics", ros.DEFAULT)
        self._marker_pub = self.create_publisher(self._markers, "~/markers", ros.DEFAULT)
        if not self._p("progress_rate_hz") > 0:
            raise ValueError(f"progress_rate_hz must be > 0, got {self._p('progress_rate_hz')}")
        self._progress_timer = self.create_timer(1.0 / self._p("progress_rate_hz"),
                                                 self.publish_progress)

    def _p(self, name: str) -> Any:
        return self.get_parameter(name).value

    # -- parameters and services ------------------------------------------------------------
    def _on_set_parameters(self, params: list) -> Any:
        for param in params:
            if self.job is not None and self.job.running and param.name != "progress_rate_hz":
                return ros.set_parameters_result(
                    False, f"{param.name} cannot change while stage {self.job.current} runs: "
                    "call ~/stop first")
            if param.name == "progress_rate_hz":
                if not param.value > 0:
                    return ros.set_parameters_result(
                        False, f"progress_rate_hz must be > 0, got {param.value}")
                self.destroy_timer(self._progress_timer)   # new rate from the next tick
                self._progress_timer = self.create_timer(1.0 / param.value,
                                                         self.publish_progress)
            if param.name == "config_path":
                reason = _config_problem(param.value)
                if reason:
                    return ros.set_parameters_result(False, reason)
            if param.name == "stages" and not set(param.value) <= set(STAGES):
                return ros.set_parameters_result(
                    False, f"stages must be among {list(STAGES)}, got {param.value}")
        return ros.set_parameters_result(True)

    def _run_dir(self) -> Path:
        from distill_ros.config import load_config

        if self._p("run_dir"):
            return Path(self._p("run_dir"))
        return Path("runs") / load_config(self._p("config_path")).name

    def _launch(self, stages: list, response: Any) -> Any:
        problem = _config_problem(self._p("config_path"))
        if self.job is not None and self.job.running:
            problem = f"busy: stage {self.job.current} is running; call ~/stop first"
        if problem:
            response.success, response.message = False, problem
            return response
        self.job = TrainingJob(self._p("config_path"), self._run_dir(), stages)
        self.job.start()
        response.success = True
        response.message = f"running {stages} of {self.job.config} in {self.job.run_dir}"
        self.get_logger().info(response.message)
        self.publish_progress()
        return response

    def _on_start(self, request: Any, response: Any) -> Any:
        return self._launch(list(self._p("stages")), response)

    def start_pipeline(self) -> Any:
        """Start the configured stages now (what ``~/start`` does); return the response."""
        return self._on_start(None, ros.get_interface("std_srvs/srv/Trigger").Response())

    def _on_export(self, request: Any, response: Any) -> Any:
        response = self._launch(["export"], response)
        if response.success:
            response.message += f": writes {self.job.run_dir / 'export' / 'policy.onnx'}"
        return response

    def _on_stop(self, request: Any, response: Any) -> Any:
        if self.job is None or not self.job.running:
            response.success, response.message = False, "nothing is running"
            return response
        stage = self.job.current
        self.job.stop()  # Ctrl-C to the stage; never blocks the executor
        response.success = True
        response.message = (f"stopped during stage {stage} (Ctrl-C sent; it saves and exits); "
                            "~/start resumes the run")
        self.get_logger().info(response.message)
        self.publish_progress()
        return response

    # -- progress ---------------------------------------------------------------------------
    def publish_progress(self) -> None:
        """Publish the run's progress on ``/diagnostics`` and as RViz markers."""
        job = self.job
        state = "idle" if job is None else job.state
        stages = {} if job is None else job.progress()
        level = {"failed": "ERROR", "stopped": "WARN"}.get(state, "OK")
        message = state if job is None or not job.error else f"{state}: {job.error}"
        live = {} if job is None else job.live_figures()
        values = {"state": state, "config": self._p("config_path"),
                  "current_stage": (job.current if job else None) or "",
                  "fraction": job.fraction() if job else 0.0, **stages, **live,
                  **(job.jobs_progress() if job else {})}  # the jobs' one bar
        self._diag_pub.publish(diagnostic_array(self, STATUS_NAME, level, message,
                                                self.get_fully_qualified_name(), values))
        self._marker_pub.publish(self._progress_markers(state, stages, values["fraction"],
                                                        live))

    def _progress_markers(self, state: str, stages: dict, fraction: float,
                          live: dict) -> Any:
        header = {"frame_id": self._p("frame_id")}
        title = self._text(0, f"distill_trainer: {state} {100 * fraction:.0f}% "
                              f"({Path(self._p('config_path')).name})", 0.0, 0.5, header)
        markers = [title]
        for i, (stage, status) in enumerate(stages.items()):
            y = -0.15 * i
            bar = self._marker(ns="distill_trainer", id=100 + i, type=self._marker.CUBE,
                               action=self._marker.ADD)
            bar.header.frame_id = header["frame_id"]
            length = {"complete": 1.0, "running": 0.5}.get(status, 0.02)
            bar.pose.position.x, bar.pose.position.y = length / 2, y
            bar.pose.orientation.w = 1.0
            bar.scale.x, bar.scale.y, bar.scale.z = length, 0.1, 0.02
            bar.color.r, bar.color.g, bar.color.b = _COLORS.get(status, _COLORS["pending"])
            bar.color.a = 0.9
            markers += [bar, self._text(200 + i, f"{stage}: {status}", -0.4, y, header)]
        if live:  # the running stage's latest figures, one line under the bars
            figures = [f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in live.items()]
            markers.append(self._text(300, "; ".join(figures), 0.0,
                                      -0.15 * len(stages) - 0.1, header))
        return self._markers(markers=markers)

    def _text(self, marker_id: int, text: str, x: float, y: float, header: dict) -> Any:
        marker = self._marker(ns="distill_trainer", id=marker_id,
                              type=self._marker.TEXT_VIEW_FACING, action=self._marker.ADD,
                              text=text)
        marker.header.frame_id = header["frame_id"]
        marker.pose.position.x, marker.pose.position.y = x, y
        marker.pose.orientation.w = 1.0
        marker.scale.z = 0.08  # m, text height
        marker.color.r = marker.color.g = marker.color.b = marker.color.a = 1.0
        return marker

    def shutdown_job(self) -> None:
        """Interrupt a running stage (at node exit)."""
        if self.job is not None and self.job.running:
            self.get_logger().info(f"stopping stage {self.job.current}: waiting for it to save "
                                   "(the run stays resumable)")
            self.job.stop(wait=True)  # let the stage save before the node goes


def _config_problem(path: str) -> str:
    """Why ``path`` is not a usable pipeline config, or ''."""
    from distill_ros.config import load_config

    try:
        load_config(path)
    except (ValueError, FileNotFoundError) as err:
        return f"config_path rejected: {err}"
    return ""


def main(args: Optional[list] = None) -> None:
    """Run the trainer node; ``autostart:=true`` starts the stages at once."""
    ros.init(args)
    node = DistillTrainer()
    if node.get_parameter("autostart").value:
        response = node.start_pipeline()
        if not response.success:
            node.get_logger().error(response.message)
    try:
        ros.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.shutdown_job()
        node.destroy_node()
        ros.shutdown()


if __name__ == "__main__":
    main()
