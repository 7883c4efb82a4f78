package monitor

// The monitor's JSON, written and read field by field with internal/minijson instead of
// encoding/json: the monitor process stays alive for every container, and encoding/json's
// code, reflection and per-type caches cost each monitor 100-150 KiB of memory for its whole
// life (bench/monitor.sh). Each function writes or reads exactly what encoding/json does for
// the type's struct tags (codec_test.go checks both ways), so the commands that read
// status.json, build Config or answer as the runtime helper keep using encoding/json.

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/internal/minijson"
	"github.com/stackrun/stack/state"
)

// decodeConfig reads a Config as Launch sends it.
func decodeConfig(b []byte) (Config, error) {
	var c Config
	d := minijson.NewDec(b)
	d.Object(func(k string) {
		switch k {
		case "id":
			c.ID = d.String()
		case "bundle":
			c.Bundle = d.String()
		case "state_dir":
			c.StateDir = d.String()
		case "run_dir":
			c.RunDir = d.String()
		case "log_path":
			c.LogPath = d.String()
		case "log_max_size":
			c.LogMaxSize = d.Int()
		case "log_max_files":
			c.LogMaxFiles = int(d.Int())
		case "restart":
			d.Object(func(k string) {
				switch k {
				case "name":
					c.Restart.Name = d.String()
				case "max_retries":
					c.Restart.MaxRetries = int(d.Int())
				default:
					d.Skip()
				}
			})
		case "healthcheck":
			c.Healthcheck = nil
			if !d.Null() {
				c.Healthcheck = decodeHealthcheck(d)
			}
		case "stop_signal":
			c.StopSignal = unix.Signal(d.Int())
		case "stop_timeout":
			c.StopTimeout = time.Duration(d.Int())
		case "runtime":
			c.Runtime = d.String()
		case "runtime_root":
			c.RuntimeRoot = d.String()
		case "runtime_helper":
			c.RuntimeHelper = d.String()
		case "adopt":
			c.Adopt = d.Bool()
		case "events":
			c.Events = nil
			if !d.Null() {
				c.Events = new(EventSink)
				d.Object(func(k string) {
					switch k {
					case "path":
						c.Events.Path = d.String()
					case "name":
						c.Events.Name = d.String()
					case "project":
						c.Events.Project = d.String()
					case "service":
						c.Events.Service = d.String()
					default:
						d.Skip()
					}
				})
			}
		case "hold_fds":
			c.HoldFDs = nil
			d.Array(func() { c.HoldFDs = append(c.HoldFDs, int(d.Int())) })
		default:
			d.Skip()
		}
	})
	return c, d.End()
}

func decodeHealthcheck(d *minijson.Dec) *Healthcheck {
	h := new(Healthcheck)
	d.Object(func(k string) {
		switch k {
		case "test":
			h.Test = d.Strings()
		case "interval":
			h.Interval = time.Duration(d.Int())
		case "timeout":
			h.Timeout = time.Duration(d.Int())
		case "retries":
			h.Retries = int(d.Int())
		case "start_period":
			h.StartPeriod = time.Duration(d.Int())
		case "start_interval":
			h.StartInterval = time.Duration(d.Int())
		default:
			d.Skip()
		}
	})
	return h
}

func (m readyMsg) appendJSON(b []byte) []byte {
	e := minijson.Enc{B: b}
	e.Open()
	e.BoolOmit("ok", m.OK)
	e.StringOmit("step", m.Step)
	e.StringOmit("error", m.Error)
	e.Close()
	return e.B
}

func decodeRequest(b []byte) (request, error) {
	var r request
	d := minijson.NewDec(b)
	d.Object(func(k string) {
		switch k {
		case "op":
			r.Op = d.String()
		case "signal":
			r.Signal = unix.Signal(d.Int())
		case "timeout":
			r.Timeout = time.Duration(d.Int())
		case "removing":
			r.Removing = d.Bool()
		default:
			d.Skip()
		}
	})
	return r, d.End()
}

func (r reply) appendJSON(b []byte) []byte {
	e := minijson.Enc{B: b}
	e.Open()
	e.StringOmit("error", r.Error)
	e.Close()
	return e.B
}

func (r *HelperRequest) appendJSON(b []byte) []byte {
	e := minijson.Enc{B: b}
	e.Open()
	e.Key("op")
	e.String(r.Op)
	e.Key("root")
	e.String(r.Root)
	e.Key("id")
	e.String(r.ID)
	e.StringOmit("bundle", r.Bundle)
	e.IntOmit("signal", int64(r.Signal))
	e.BoolOmit("force", r.Force)
	e.StringsOmit("args", r.Args)
	e.StringsOmit("env", r.Env)
	e.StringOmit("cwd", r.Cwd)
	e.Close()
	return e.B
}

func decodeHelperResponse(b []byte) (HelperResponse, error) {
	var r HelperResponse
	d := minijson.NewDec(b)
	d.Object(func(k string) {
		switch k {
		case "pid":
			r.Pid = int(d.Int())
		case "step":
			r.Step = d.String()
		case "state":
			r.State = nil
			if !d.Null() {
				s := decodeState(d)
				r.State = &s
			}
		case "code":
			r.Code = int(d.Int())
		case "error":
			r.Error = d.String()
		case "not_found":
			r.NotFound = d.Bool()
		default:
			d.Skip()
		}
	})
	return r, d.End()
}

// decodeState reads an OCI state (runc state's output, the helper's State).
func decodeState(d *minijson.Dec) State {
	var s State
	d.Object(func(k string) {
		switch k {
		case "id":
			s.ID = d.String()
		case "status":
			s.Status = d.String()
		case "pid":
			s.Pid = int(d.Int())
		case "bundle":
			s.Bundle = d.String()
		default:
			d.Skip()
		}
	})
	return s
}

// appendJSON writes the status record.
func (s *Status) appendJSON(b []byte) []byte {
	e := minijson.Enc{B: b}
	e.Open()
	e.Key("id")
	e.String(s.ID)
	e.Key("state")
	e.String(string(s.State))
	e.Key("boot_id")
	e.String(s.BootID)
	e.Key("monitor_pid")
	e.Int(int64(s.MonitorPid))
	e.Key("monitor_start_time")
	e.Uint(s.MonitorStartTime)
	e.IntOmit("container_pid", int64(s.ContainerPid))
	e.UintOmit("container_start_time", s.ContainerStartTime)
	e.Key("exit_code")
	e.Int(int64(s.ExitCode))
	e.IntOmit("signal", int64(s.Signal))
	e.BoolOmit("oom_killed", s.OOMKilled)
	e.TimeOmit("started_at", s.StartedAt)
	e.TimeOmit("finished_at", s.FinishedAt)
	e.Key("restart_count")
	e.Int(int64(s.RestartCount))
	if len(s.Restarts) > 0 {
		e.Key("restarts")
		e.OpenArray()
		for _, r := range s.Restarts {
			e.Open()
			e.Key("at")
			e.Time(r.At)
			e.Key("delay")
			e.Int(int64(r.Delay))
			e.Key("exit_code")
			e.Int(int64(r.ExitCode))
			e.Close()
		}
		e.CloseArray()
	}
	e.BoolOmit("stop_requested", s.StopRequested)
	e.BoolOmit("adopted", s.Adopted)
	if h := s.Health; h != nil {
		e.Key("health")
		e.Open()
		e.Key("status")
		e.String(h.Status)
		e.Key("failing_streak")
		e.Int(int64(h.FailingStreak))
		if len(h.Log) > 0 {
			e.Key("log")
			e.OpenArray()
			for _, p := range h.Log {
				e.Open()
				e.Key("start")
				e.Time(p.Start)
				e.Key("end")
				e.Time(p.End)
				e.Key("exit_code")
				e.Int(int64(p.ExitCode))
				e.Key("output")
				e.String(p.Output)
				e.Close()
			}
			e.CloseArray()
		}
		e.Close()
	}
	e.StringOmit("error", s.Error)
	e.BoolOmit("unsupervised", s.Unsupervised)
	e.Close()
	return e.B
}

func decodeStatus(b []byte) (Status, error) {
	var s Status
	d := minijson.NewDec(b)
	d.Object(func(k string) {
		switch k {
		case "id":
			s.ID = d.String()
		case "state":
			s.State = ContainerState(d.String())
		case "boot_id":
			s.BootID = d.String()
		case "monitor_pid":
			s.MonitorPid = int(d.Int())
		case "monitor_start_time":
			s.MonitorStartTime = d.Uint()
		case "container_pid":
			s.ContainerPid = int(d.Int())
		case "container_start_time":
			s.ContainerStartTime = d.Uint()
		case "exit_code":
			s.ExitCode = int(d.Int())
		case "signal":
			s.Signal = int(d.Int())
		case "oom_killed":
			s.OOMKilled = d.Bool()
		case "started_at":
			s.StartedAt = d.Time()
		case "finished_at":
			s.FinishedAt = d.Time()
		case "restart_count":
			s.RestartCount = int(d.Int())
		case "restarts":
			s.Restarts = nil
			d.Array(func() {
				var r RestartEvent
				d.Object(func(k string) {
					switch k {
					case "at":
						r.At = d.Time()
					case "delay":
						r.Delay = time.Duration(d.Int())
					case "exit_code":
						r.ExitCode = int(d.Int())
					default:
						d.Skip()
					}
				})
				s.Restarts = append(s.Restarts, r)
			})
		case "stop_requested":
			s.StopRequested = d.Bool()
		case "adopted":
			s.Adopted = d.Bool()
		case "health":
			s.Health = nil
			if !d.Null() {
				s.Health = decodeHealth(d)
			}
		case "error":
			s.Error = d.String()
		case "unsupervised":
			s.Unsupervised = d.Bool()
		default:
			d.Skip()
		}
	})
	return s, d.End()
}

func decodeHealth(d *minijson.Dec) *HealthState {
	h := new(HealthState)
	d.Object(func(k string) {
		switch k {
		case "status":
			h.Status = d.String()
		case "failing_streak":
			h.FailingStreak = int(d.Int())
		case "log":
			h.Log = nil
			d.Array(func() {
				var p Probe
				d.Object(func(k string) {
					switch k {
					case "start":
						p.Start = d.Time()
					case "end":
						p.End = d.Time()
					case "exit_code":
						p.ExitCode = int(d.Int())
					case "output":
						p.Output = d.String()
					default:
						d.Skip()
					}
				})
				h.Log = append(h.Log, p)
			})
		default:
			d.Skip()
		}
	})
	return h
}

// readStatus reads the status record at path; a missing file is an error satisfying
// state.IsNotExist.
func readStatus(path string) (Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Status{}, err
	}
	s, err := decodeStatus(b)
	if err != nil {
		return Status{}, &os.PathError{Op: "decode", Path: path, Err: err}
	}
	return s, nil
}

// writeStatus writes the status record at path atomically.
func writeStatus(path string, s *Status) error {
	return state.WriteFile(path, append(s.appendJSON(nil), '\n'), state.FileMode)
}
