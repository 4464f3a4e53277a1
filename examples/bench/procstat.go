package main

// What the harness reads of /proc: the CPU time and memory of the proxy's
// processes, and the machine's busy time (to tell how much CPU other
// processes took while a step ran).

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat and
// /proc/stat: 100 on every Linux architecture Go runs on.
const clockTicks = 100

// procCPU returns the user plus system CPU time of a process, from fields
// 14 and 15 of /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	st, err := parseStat(data)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return ticks(st.utime + st.stime), nil
}

// stat is what the harness reads of /proc/PID/stat.
type stat struct {
	ppid         int
	utime, stime uint64
}

// parseStat reads /proc/PID/stat. The command name (field 2) is in
// parentheses and may hold spaces, so the fields are counted from the last
// ')'.
func parseStat(data []byte) (stat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("no command name")
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 13 {
		return stat{}, fmt.Errorf("%d fields after the command name, want 13 or more", len(f))
	}
	var s stat
	var err error
	if s.ppid, err = strconv.Atoi(f[4-3]); err != nil {
		return stat{}, fmt.Errorf("ppid: %w", err)
	}
	if s.utime, err = strconv.ParseUint(f[14-3], 10, 64); err != nil {
		return stat{}, fmt.Errorf("utime: %w", err)
	}
	if s.stime, err = strconv.ParseUint(f[15-3], 10, 64); err != nil {
		return stat{}, fmt.Errorf("stime: %w", err)
	}
	return s, nil
}

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTicks }

// children returns the processes whose parent is pid (Kamailio's workers).
func children(pid int) []int {
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		st, err := parseStat(data)
		if err != nil || st.ppid != pid {
			continue
		}
		if n, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// pss returns the proportional set size of a process, from
// /proc/PID/smaps_rollup: its private memory plus its share of the memory
// it shares (Kamailio's shared memory is counted once over its processes).
func pss(pid int) (int64, error) {
	return kbField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss")
}

func kbField(path, field string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		v := strings.Fields(rest)
		if len(v) == 0 {
			break
		}
		n, err := strconv.ParseInt(v[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", path, field, err)
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("%s: no %s", path, field)
}

// machineCPU returns the busy and total time of every CPU together, from
// the first line of /proc/stat (busy is everything but idle and iowait).
func machineCPU() (busy, total time.Duration, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseMachineCPU(data)
}

func parseMachineCPU(data []byte) (busy, total time.Duration, err error) {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: first line %q is not the cpu line", line)
	}
	var sum, idle uint64
	// user nice system idle iowait irq softirq steal (guest is in user).
	for i, s := range f[1:] {
		if i >= 8 {
			break
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %q: %w", s, err)
		}
		sum += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return ticks(sum - idle), ticks(sum), nil
}

// loadAvg returns the first field of /proc/loadavg.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// udpReceiveDrops returns the kernel's count of UDP datagrams dropped
// because a socket's receive buffer was full (RcvbufErrors in
// /proc/net/snmp), for the whole network namespace.
func udpReceiveDrops() (int64, error) {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	return parseUDPDrops(data)
}

func parseUDPDrops(data []byte) (int64, error) {
	var head []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if head == nil {
			head = f
			continue
		}
		for i, name := range head {
			if name == "RcvbufErrors" && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/net/snmp: no Udp RcvbufErrors")
}

// udpSocketDrops returns the datagrams dropped at the receive buffer of
// the UDP socket bound to ip:port (the last column of /proc/net/udp).
func udpSocketDrops(ip string, port int) (int64, error) {
	data, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return 0, err
	}
	return parseSocketDrops(data, ip, port)
}

func parseSocketDrops(data []byte, ip string, port int) (int64, error) {
	a := net.ParseIP(ip).To4()
	if a == nil {
		return 0, fmt.Errorf("%q is not an IPv4 address", ip)
	}
	// The address is the hex of the 32-bit word in host order; accept both.
	want := []string{
		fmt.Sprintf("%02X%02X%02X%02X:%04X", a[3], a[2], a[1], a[0], port),
		fmt.Sprintf("%02X%02X%02X%02X:%04X", a[0], a[1], a[2], a[3], port),
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 || (f[1] != want[0] && f[1] != want[1]) {
			continue
		}
		return strconv.ParseInt(f[len(f)-1], 10, 64)
	}
	return 0, fmt.Errorf("no udp socket on %s:%d", ip, port)
}

// receiveBuffer returns the receive buffer of the UDP socket bound to
// ip:port as the kernel reports it (rb in ss's socket memory): twice what
// the proxy asked for with SO_RCVBUF, capped at net.core.rmem_max.
func receiveBuffer(ip string, port int) (int64, error) {
	out, err := exec.Command("ss", "-uanmH", fmt.Sprintf("src %s:%d", ip, port)).Output()
	if err != nil {
		return 0, fmt.Errorf("ss: %w", err)
	}
	return parseReceiveBuffer(out)
}

// rbField is the receive buffer in ss's skmem:(r0,rb8388608,...).
var rbField = regexp.MustCompile(`\brb(\d+)\b`)

func parseReceiveBuffer(out []byte) (int64, error) {
	m := rbField.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no socket's receive buffer in ss's output %q", out)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}
