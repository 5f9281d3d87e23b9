package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	networktypes "github.com/moby/moby/api/types/network"
)

// NetworkList is GET /networks.
func (c *Client) NetworkList(ctx context.Context, q url.Values) ([]networktypes.Summary, error) {
	var out []networktypes.Summary
	return out, c.getJSON(ctx, "/networks", q, &out)
}

// NetworkInspectRaw is GET /networks/{id} as sent.
func (c *Client) NetworkInspectRaw(ctx context.Context, id string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.getJSON(ctx, "/networks/"+id, nil, &out)
}

// NetworkCreate is POST /networks/create.
func (c *Client) NetworkCreate(ctx context.Context, req networktypes.CreateRequest) (networktypes.CreateResponse, error) {
	var out networktypes.CreateResponse
	return out, c.postJSON(ctx, "/networks/create", nil, req, &out)
}

// NetworkRemove is DELETE /networks/{id}.
func (c *Client) NetworkRemove(ctx context.Context, id string) error {
	resp, err := c.Do(ctx, http.MethodDelete, "/networks/"+id, nil, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// NetworkConnect is POST /networks/{id}/connect.
func (c *Client) NetworkConnect(ctx context.Context, id string, req networktypes.ConnectRequest) error {
	return c.postJSON(ctx, "/networks/"+id+"/connect", nil, req, nil)
}

// NetworkDisconnect is POST /networks/{id}/disconnect.
func (c *Client) NetworkDisconnect(ctx context.Context, id string, req networktypes.DisconnectRequest) error {
	return c.postJSON(ctx, "/networks/"+id+"/disconnect", nil, req, nil)
}

// NetworksPrune is POST /networks/prune; q carries the filters.
func (c *Client) NetworksPrune(ctx context.Context, q url.Values) (networktypes.PruneReport, error) {
	var out networktypes.PruneReport
	return out, c.postJSON(ctx, "/networks/prune", q, nil, &out)
}

// postJSON POSTs in as JSON (nil: no body) and decodes the answer into out
// (nil: the answer is discarded).
func (c *Client) postJSON(ctx context.Context, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.Do(ctx, http.MethodPost, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode response of POST %s: %w", path, err)
	}
	return nil
}
