package setup

import "time"

// SetClock replaces the handler's clock; call it before serving.
func (h *Handler) SetClock(now func() time.Time) { h.now = now }
