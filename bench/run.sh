#!/usr/bin/env bash
# bench/run.sh: everything `make bench` measures, each figure beside a
# baseline measured in the same run. Runs on a private cluster of its own
# (so test runs that restart the shared one cannot disturb the figures).
set -euo pipefail
cd "$(dirname "$0")/.."
export WHISTLE_PGDEV_DIR=${WHISTLE_PGDEV_DIR:-/tmp/whistle-bench-pg}
export WHISTLE_PGDEV_PORT=${WHISTLE_PGDEV_PORT:-54339}

# The stream alone (the producer appends events, the consumer applies them).
BENCH_STORE=0 bash bench/stream.sh
echo
# The same with one business row per event on the producer's side, as a
# service writes it (a shorter latency run: the headline one is above).
BENCH_STORE=1 BENCH_LAT_SECONDS=3 bash bench/stream.sh
echo; bash bench/intake_bench.sh  # whistle-intake through the hotline socket against naive INSERT and COPY
echo; bash bench/referral_bench.sh  # intake ack -> step visible on the referral stream, beside intake alone
echo; bash bench/rating_bench.sh  # whistle-rating applying both streams, and one month close, beside Postgres alone
echo; bash bench/escalation_bench.sh  # overdue events and decisions -> notices delivered, beside a raw stream read
echo; bash bench/pipeline_bench.sh  # a generated quarter through the four daemons, beside intake alone; replay pipelined beside --sequential
