package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
)

// maxTagsPage bounds one page of a tag list: a registry's page is what it
// chose to send, and a hostile one could send without end.
const maxTagsPage = 8 << 20

// maxTagsPages bounds how many pages are followed.
const maxTagsPages = 10000

// tagsPageSize is how many tags a page is asked for (n=): registries
// choose their own bound, and say where the next page is.
var tagsPageSize = 1000

// Tags lists the repository's tags (GET /v2/NAME/tags/list), in the
// registry's order, following its pages (Link: <URL>; rel="next").
func (r *Repository) Tags(ctx context.Context) ([]string, error) {
	var all []string
	req := request{method: http.MethodGet, path: "/tags/list?n=" + strconv.Itoa(tagsPageSize), mirrors: true}
	for range maxTagsPages {
		resp, err := r.do(ctx, req)
		if err != nil {
			if errdefs.KindOf(err) == errdefs.KindNotFound {
				return nil, errdefs.NotFound(fmt.Errorf("repository %s not found: %w", r.Named.Name(), err))
			}
			return nil, err
		}
		var page struct{ Tags []string }
		err = json.NewDecoder(io.LimitReader(resp.Body, maxTagsPage)).Decode(&page)
		next := nextPage(resp)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("tags of %s: %w", r.Named.Name(), err)
		}
		all = append(all, page.Tags...)
		if next == "" {
			return all, nil
		}
		req = request{method: http.MethodGet, rawURL: next}
	}
	return nil, fmt.Errorf("tags of %s: more than %d pages", r.Named.Name(), maxTagsPages)
}

// nextPage is the URL of the next page a response names in its Link
// header, resolved against the request's; "" if none.
func nextPage(resp *http.Response) string {
	for _, link := range resp.Header.Values("Link") {
		for _, part := range strings.Split(link, ",") {
			target, params, ok := strings.Cut(part, ";")
			if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				continue
			}
			u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
			if err != nil {
				return ""
			}
			return resp.Request.URL.ResolveReference(u).String()
		}
	}
	return ""
}
