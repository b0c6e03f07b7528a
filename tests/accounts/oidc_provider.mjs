// A real OpenID provider for the tests (the npm package oidc-provider, its development login
// pages: any login name, any password). Environment: PORT, REDIRECT_URI, CLIENT_ID, CLIENT_SECRET.
// Every account's claims are made from its login name.
import Provider from "oidc-provider";

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.org`,
          email_verified: true,
          name: `${id[0].toUpperCase()}${id.slice(1)} Example`,
          preferred_username: id,
        };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => false },
  cookies: { keys: ["packhouse-tests"] },
});

provider.listen(port, "127.0.0.1", () => {
  console.log(`ready ${issuer}`);
});
