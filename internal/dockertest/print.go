package dockertest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// Print makes a container of mode "print" write text, as is and in one
// write, to its stdout or stderr ("stdout" or "stderr").
func (a *App) Print(ctx context.Context, stream, text string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+a.Addr+"/print?stream="+stream, strings.NewReader(text))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("dockertest: %s /print: %w", a.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("dockertest: %s /print: %s", a.Name, resp.Status)
	}
	return nil
}
