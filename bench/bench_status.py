"""Status helpers the benches share (their Python parts import it): wait
until a daemon is up, read counters, follow a consumer to its producer's
head. Debian's python3 with python3-zmq; the test library's wt for status."""
import sys
import time

sys.path.insert(0, "tests/lib")
import wt  # noqa: E402


def st(ep):
    return wt.status(ep, 2.0) or {}


def common(cmd, args):
    """Runs a shared command: ready, get or follow; None if cmd is not one."""
    if cmd == "ready":  # endpoint: status answers and Postgres is up
        return 0 if wt.wait_for(lambda: st(args[0]).get("pg.up") == 1, 120, "ready", 0.05) else 1
    if cmd == "get":  # endpoint, counter...
        s = st(args[0])
        print(" ".join(str(s.get(k, "?")) for k in args[1:]))
        return 0
    if cmd == "follow":  # consumer endpoint, counter, producer endpoint, counter, timeout s
        end = time.time() + float(args[4])
        last, same = None, 0
        while time.time() < end:
            head, pos = st(args[2]).get(args[3]), st(args[0]).get(args[1])
            if head is not None and pos is not None and pos >= head and head == last:
                same += 1
                if same >= 3:  # the head stays put and is reached
                    print(head)
                    return 0
            else:
                same = 0
            last = head
            time.sleep(0.2)
        return 1
    return None
