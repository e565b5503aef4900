#!/usr/bin/env bash
# Multi-node DDP with torchrun: run this on every node, with the same MASTER_ADDR and its own NODE_RANK.
#
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 NPROC_PER_NODE=4 scripts/torchrun_multinode.sh --config configs/cifar10.yaml
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=node0 NPROC_PER_NODE=4 scripts/torchrun_multinode.sh --config configs/cifar10.yaml
#
# Every argument goes to `python -m src.train`. The script passes --trainer.num_nodes and --trainer.devices
# (Lightning must agree with torchrun), so the CLI picks DDP. tests/test_multinode.py runs it with 2 nodes x 1
# process on 127.0.0.1 (gloo). Pass --ckpt_path auto to resume after a restart, on any number of nodes when
# --data.global_batch_size keeps the global batch.
set -euo pipefail
: "${NODE_RANK:?set NODE_RANK (0 on the first node, 1 on the next, ...)}"
: "${MASTER_ADDR:?set MASTER_ADDR to the address of node 0}"
NNODES="${NNODES:-2}"
NPROC_PER_NODE="${NPROC_PER_NODE:-1}"
MASTER_PORT="${MASTER_PORT:-29500}"
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="$NNODES" --nproc_per_node="$NPROC_PER_NODE" --node_rank="$NODE_RANK" \
  --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" \
  -m src.train --trainer.num_nodes="$NNODES" --trainer.devices="$NPROC_PER_NODE" "$@"
