"""A connection to one chain: web3 client, the signing account, transactions, and revert decoding.

    chain = Chain(rpc_url)                       # $ZKINFER_PRIVATE_KEY signs, else anvil's dev accounts
    receipt = chain.transact(contract.functions.f(x), "doing f")
    deployed = chain.deploy(artifact, [arg])     # a DeployedContract: address, transaction, gas

Keys: $ZKINFER_PRIVATE_KEY signs every transaction; without it, only a local chain (chain id 31337) is
used, with anvil's unlocked dev accounts. A key is never printed or logged.

A revert becomes a ContractRevertError naming the custom error and its arguments, decoded with the ABIs of
the project's contracts as recorded on disk (`pipeline.evm.recorded_abis`): nothing is compiled, so a
machine without the npm toolchain still learns the real error.
"""

from __future__ import annotations

import os
from functools import cached_property

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from eth_utils.abi import abi_to_signature, collapse_if_tuple

from ..errors import ChainError, UsageError
from ..evm.solidity import recorded_abis
from .deployments import DeployedContract
from .node import LOCAL_CHAIN_ID

PRIVATE_KEY_ENV = "ZKINFER_PRIVATE_KEY"
RPC_TIMEOUT_S = 30
RECEIPT_TIMEOUT_S = 120
ZERO_ADDRESS = "0x" + "00" * 20

# The standard errors every contract may revert with besides its own.
_STANDARD_ERRORS = [
    {"type": "error", "name": "Error", "inputs": [{"type": "string", "name": "message"}]},
    {"type": "error", "name": "Panic", "inputs": [{"type": "uint256", "name": "code"}]},
]


class ContractRevertError(ChainError):
    """A call or transaction reverted; `error_name` and `error_args` hold the decoded custom error."""

    def __init__(self, what: str, error_name: str | None, error_args: dict | None = None, raw: str = ""):
        if error_name:
            args = ", ".join(f"{k}={v}" for k, v in (error_args or {}).items())
            detail = f"{error_name}({args})"
        else:
            detail = f"reverted without a known error (data {raw or '0x'})"
        super().__init__(f"{what} reverted: {detail}")
        self.error_name = error_name
        self.error_args = error_args or {}


class RevertDecoder:
    """Turns revert data into the custom error's name and arguments, from every known ABI."""

    def __init__(self, abis: list[list[dict]]):
        self._errors: dict[bytes, dict] = {}
        for abi in [*abis, _STANDARD_ERRORS]:
            for item in abi:
                if item.get("type") == "error":
                    self._errors[keccak(text=abi_to_signature(item))[:4]] = item

    def decode(self, data: bytes) -> tuple[str, dict] | None:
        item = self._errors.get(data[:4])
        if item is None:
            return None
        types = [collapse_if_tuple(i) for i in item["inputs"]]
        try:
            values = abi_decode(types, data[4:])
        except Exception:  # malformed revert data: report it undecoded rather than fail differently
            return None
        names = [i.get("name") or f"arg{n}" for n, i in enumerate(item["inputs"])]
        return item["name"], {n: display(v) for n, v in zip(names, values, strict=True)}


def display(value):
    """A decoded ABI value as people (and JSON) read it: bytes as hex, addresses checksummed."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, tuple | list):
        return [display(v) for v in value]
    return value


def checked_address(value: str, what: str) -> str:
    """`value` as a checksummed address; a UsageError naming `what` if it is not one."""
    try:
        return to_checksum_address(value)
    except (ValueError, TypeError):
        raise UsageError(f"{what} {value!r} is not an address (0x and 40 hex digits)") from None


def _revert_data(e: Exception) -> bytes | None:
    data = getattr(e, "data", None)
    if isinstance(data, dict):  # some providers nest it
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


class Chain:
    """A connection to one chain with a signing account, the project's ABIs and revert decoding."""

    def __init__(self, rpc_url: str, private_key: str | None = None):
        from web3 import HTTPProvider, Web3

        self.rpc_url = rpc_url
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_S}))
        try:
            self.chain_id = self.w3.eth.chain_id
        except Exception as e:
            raise ChainError(f"cannot reach the RPC endpoint {rpc_url}: {_first_line(e)}") from None
        self._signer = self._install_signer(private_key if private_key is not None
                                            else os.environ.get(PRIVATE_KEY_ENV))

    def _install_signer(self, key: str | None) -> str | None:
        """Sign every transaction with `key` (kept only inside web3's signing middleware)."""
        if not key:
            return None
        from eth_account import Account
        from web3.middleware import SignAndSendRawMiddlewareBuilder

        try:
            acct = Account.from_key(key)
        except Exception:
            # Never echo the key (or a fragment of it) back.
            raise UsageError(f"{PRIVATE_KEY_ENV} is not a valid private key (32 bytes, hex)") from None
        self.w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(acct), layer=0)
        self.w3.eth.default_account = acct.address
        return acct.address

    @cached_property
    def account(self) -> str:
        """The sending account: the key's, or on a local chain anvil's first dev account. Resolved on first
        use, so checks that need no account (the chain id) come first."""
        if self._signer:
            return self._signer
        if self.chain_id != LOCAL_CHAIN_ID:
            raise UsageError(f"chain {self.chain_id} at {self.rpc_url} is not a local dev chain: "
                             f"set {PRIVATE_KEY_ENV} to the deployer's private key")
        accounts = self.w3.eth.accounts
        if not accounts:
            raise ChainError(f"the local chain at {self.rpc_url} has no unlocked dev accounts")
        self.w3.eth.default_account = accounts[0]
        return accounts[0]

    @cached_property
    def decoder(self) -> RevertDecoder:
        """Every custom error of the project's contracts, from their artifacts on disk (`recorded_abis`):
        decoding a revert compiles nothing, so it needs no toolchain."""
        return RevertDecoder(recorded_abis())

    def contract(self, address: str, abi: list):
        return self.w3.eth.contract(address=to_checksum_address(address), abi=abi)

    def _reverted(self, what: str, e: Exception) -> ChainError:
        data = _revert_data(e)
        if data:
            decoded = self.decoder.decode(data)
            if decoded:
                return ContractRevertError(what, *decoded)
            return ContractRevertError(what, None, raw="0x" + data.hex())
        return ChainError(f"{what} failed: {_first_line(e)}")

    def call(self, fn, what: str):
        """A read-only call; a revert becomes a ContractRevertError naming the custom error."""
        return self._unless_reverted(fn.call, what)

    def estimate_gas(self, fn, what: str) -> int:
        """The gas a transaction calling `fn` would use; a revert becomes a ContractRevertError."""
        return self._unless_reverted(fn.estimate_gas, what)

    def _unless_reverted(self, run, what: str):
        from web3.exceptions import ContractLogicError

        try:
            return run()
        except ContractLogicError as e:
            raise self._reverted(what, e) from None

    def transact(self, fn, what: str, sender: str | None = None):
        """Send a transaction and wait for its receipt; a revert becomes a ContractRevertError.

        `sender` picks another unlocked account (local dev chains only).
        """
        params = {"from": sender or self.account}
        return self._send(lambda: fn.transact(params), what)

    def _send(self, send, what: str):
        """Run `send()` (which sends one transaction and returns its hash) and wait for the receipt."""
        from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

        try:
            tx_hash = send()
        except ContractLogicError as e:
            raise self._reverted(what, e) from None
        except Web3RPCError as e:  # refused by the node: code size, gas cap, funds, nonce
            raise ChainError(f"{what} failed: {_rpc_message(e)}") from None
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
        except TimeExhausted:
            raise ChainError(f"{what}: no receipt for {tx_hash.hex()} after {RECEIPT_TIMEOUT_S} s") from None
        if receipt.status != 1:
            raise ChainError(f"{what}: transaction {tx_hash.hex()} failed (status 0, "
                             f"gas used {receipt.gasUsed})")
        return receipt

    def deploy(self, artifact: dict, args: list, what: str | None = None) -> DeployedContract:
        """Deploy a compiled contract; returns where it went and what it cost."""
        name = artifact["contractName"]
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.transact(factory.constructor(*args), what or f"deploying {name}")
        return DeployedContract(contract_name=name, address=receipt.contractAddress,
                                transaction_hash="0x" + bytes(receipt.transactionHash).hex(),
                                block_number=receipt.blockNumber, gas_used=receipt.gasUsed,
                                args=_jsonable(args))

    def deploy_code(self, initcode: bytes, name: str, what: str | None = None) -> DeployedContract:
        """Deploy raw init code (a contract-creation transaction with no ABI): e.g. a data contract."""
        tx = {"from": self.account, "data": "0x" + initcode.hex()}
        receipt = self._send(lambda: self.w3.eth.send_transaction(tx), what or f"deploying {name}")
        return DeployedContract(contract_name=name, address=receipt.contractAddress,
                                transaction_hash="0x" + bytes(receipt.transactionHash).hex(),
                                block_number=receipt.blockNumber, gas_used=receipt.gasUsed)

    def code(self, address: str) -> bytes:
        return bytes(self.w3.eth.get_code(to_checksum_address(address)))

    def has_code(self, address: str) -> bool:
        return len(self.code(address)) > 0

    def latest_timestamp(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]


def _rpc_message(e: Exception) -> str:
    response = getattr(e, "rpc_response", None) or {}
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return _first_line(e)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _jsonable(value):
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
