#!/bin/sh
# npm test: the whole suite on this machine, in three stages.
#
# 1. The suite (ava, 2 files at a time): everything but the tests below.
# 2. The systemd containers (the README's service blocks, the .deb) and the
#    reference's UML guests, side by side: they load different parts of the
#    machine, and none asserts anything at the microsecond level.
# 3. The system-clock tests in UML guests, alone: they measure precision.
set -e
npm run build
ava
BERKELEYD_UML_TESTS=1 ava dist/test/reference-uml.test.js &
guests=$!
status=0
ava dist/test/container.test.js dist/test/deb.test.js || status=1
wait "$guests" || status=1
[ "$status" = 0 ]
BERKELEYD_UML_TESTS=1 ava dist/test/sysclock-uml.test.js
