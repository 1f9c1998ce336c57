//go:build !unix

package projector

import "time"

// processCPU is not measured here: the auditor's budget is not enforced,
// only its rate.
func processCPU() time.Duration { return 0 }
