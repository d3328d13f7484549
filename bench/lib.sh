# Sourced by the bench scripts and the bench smoke test: a free loopback
# port, and a bounded wait for a server to listen (a server that exits or
# never listens fails the script at once instead of hanging it).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_listening PORT PID: returns once 127.0.0.1:PORT accepts, or fails
# (saying so) if process PID exits first or 10 s go by.
wait_listening() {
  local port=$1 pid=$2
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "the server on :$port exited before it listened" >&2; return 1; }
    sleep 0.05
  done
  echo "the server on :$port did not listen within 10 s" >&2
  return 1
}
