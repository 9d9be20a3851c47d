/* emu_ops.h - backend tables of the VNNI tiers with VPDPBUSD emulated (tests only).
 * SPDX-License-Identifier: MIT */
#ifndef LLMQ_TEST_EMU_OPS_H
#define LLMQ_TEST_EMU_OPS_H

#include "backend/backend.h"

extern const llmq_backend_ops llmq_test_emu_vnni256_ops;
extern const llmq_backend_ops llmq_test_emu_vnni512_ops;

#endif
