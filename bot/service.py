"""JobService: what frontends and the CLI call. Validates input, creates jobs, and serves results.

Never imports a chat library. Jobs are created `queued`; the poller takes them as capacity allows and
the job runner (bot/runner.py) sends them to their provider.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot import faults, i18n, languages, media, permutations
from bot.access import AccessPolicy, Caller, scope_key
from bot.config import AppConfig
from bot.domain import PICK_PROMPT, Job, JobState, Owner, Placement, batch_origins, button_label, new_job_id
from bot.errors import (
    BadImage,
    InvalidPrompt,
    JobNotFinished,
    ProviderPaused,
    QuotaExceeded,
    UnknownJob,
    UnsupportedAction,
    UserError,
)
from bot.events import JobListener
from bot.i18n import N_, t
from bot.job_media import JobMedia
from bot.moderation import Moderator
from bot.pool import ProviderPool
from bot.prompt import ParsedPrompt, parse_prompt
from bot.quota import Quotas, Usage
from bot.store import JobStore
from bot.store.prompts import PromptRequest
from bot.zoom import split_zoom, with_zoom
from providers.base import (
    REMIXABLE,
    Action,
    BlendDimensions,
    Capabilities,
    Flag,
    GenerationRequest,
    ImageInput,
    Speed,
    offer_key,
)

_CANNOT: dict[Action, str] = {
    Action.IMAGINE: N_("Provider '{provider}' cannot imagine."),
    Action.DESCRIBE: N_("Provider '{provider}' cannot describe images."),
    Action.BLEND: N_("Provider '{provider}' cannot blend images."),
    Action.SHORTEN: N_("Provider '{provider}' cannot shorten prompts."),
}
#: "Job x has already <ended>." (a cancel too late), by how it ended.
_ENDED: dict[JobState, str] = {
    JobState.SUCCEEDED: N_("Job {id} has already succeeded."),
    JobState.FAILED: N_("Job {id} has already failed."),
    JobState.CANCELLED: N_("Job {id} has already cancelled."),
    JobState.TIMED_OUT: N_("Job {id} has already timed out."),
}
#: A button pressed on a job that ended without a result, by how it ended.
_NO_BUTTONS: dict[JobState, str] = {
    JobState.FAILED: N_("Job {id} failed; it has no buttons."),
    JobState.CANCELLED: N_("Job {id} cancelled; it has no buttons."),
    JobState.TIMED_OUT: N_("Job {id} timed out; it has no buttons."),
}
#: A button pressed on a job still under way, by its state.
_STILL: dict[JobState, str] = {
    JobState.QUEUED: N_("Job {id} is still queued; wait for it to finish."),
    JobState.SUBMITTING: N_("Job {id} is still submitting; wait for it to finish."),
    JobState.SUBMITTED: N_("Job {id} is still submitted; wait for it to finish."),
    JobState.RUNNING: N_("Job {id} is still running; wait for it to finish."),
}


_ACTIVE = (JobState.SUBMITTED, JobState.RUNNING)
REMIX_SETTINGS = ("off", "on")  # the Remix setting's values (off when never set)
_REMIXABLE = frozenset(action.value for action in REMIXABLE)
_SPEEDS: dict[str, Speed] = {"relax": "relax", "fast": "fast", "turbo": "turbo"}


class _Raced(Exception):
    """Another worker stored the jobs of the same platform event first (rolls this transaction back)."""


def _speed(value: str | None) -> Speed | None:
    return _SPEEDS.get(value or "")


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    type: str
    capabilities: Capabilities
    queued: int
    active: int
    paused: bool  # nothing is sent to it now: held by an admin, or rate-limited
    last_success: float | None
    held: bool = False  # paused by an admin until they resume it
    rate_limited_until: float | None = None  # the provider's Retry-After holds every request until then


class JobService:
    def __init__(
        self,
        config: AppConfig,
        store: JobStore,
        pool: ProviderPool,
        job_media: JobMedia,
        listener: JobListener,
        wake: Callable[[], None],
        clock: Callable[[], float],
        *,
        access: AccessPolicy,
        moderator: Moderator,
        quotas: Quotas,
    ) -> None:
        """Every collaborator is built and wired by the composition root (bot.app.build_app), never
        here: `quotas` must also be a job listener there (refunds), and the admin service shares
        `access` and `quotas` with this service. `wake` tells the poller a job is waiting."""
        self._config = config
        self._store = store
        self._pool = pool
        self.media = job_media
        self._listener = listener
        self._wake = wake
        self._clock = clock
        self.access = access
        self.moderator = moderator
        self.quotas = quotas

    # -- commands ---------------------------------------------------------------------------------

    async def imagine(
        self,
        caller: Caller,
        prompt: str,
        *,
        provider: str | None = None,
        images: Sequence[ImageInput] = (),
        speed: Speed | None = None,
        placement: Placement | None = None,
        origin: str | None = None,
    ) -> Job:
        """Every command takes the `Caller` first: who asks (the job's owner), where (`caller.scope`,
        else the placement's chat, for per-chat limits and access lists) and with which rights (a
        chat admin is exempt from limits unless `limits.exempt_chat_admins` is off; operators always
        are). `origin` names the platform event asking (see `_create`).

        One prompt, one job: a prompt that makes several (permutations, --repeat) is refused here;
        the frontends and the CLI ask `imagine_many`."""
        name, requests = await self._imagine_requests(caller.owner, prompt, provider, images, speed)
        if len(requests) > 1:
            raise InvalidPrompt(t("This prompt makes {count} jobs (permutations or --repeat); "
                                  "this command makes one.", count=len(requests)))
        return await self._create(caller, name, requests[0], placement, origin)

    async def imagine_many(
        self,
        caller: Caller,
        prompt: str,
        *,
        provider: str | None = None,
        images: Sequence[ImageInput] = (),
        speed: Speed | None = None,
        placement: Placement | None = None,
        origin: str | None = None,
    ) -> tuple[list[Job], bool]:
        """`imagine` for a prompt that may make several jobs, as Midjourney's does: one per permutation
        (`a {red, green} bird`, bot/permutations.py), each run `--repeat N` times (they multiply), at
        most `limits.max_permutations` in all. Every job is checked before any is made, then all are
        stored and charged in one transaction, or none (see `_create_set`). Returns them in order and
        whether they are new (False: `origin` processed again after a restart found its jobs)."""
        name, requests = await self._imagine_requests(caller.owner, prompt, provider, images, speed)
        return await self._create_set(caller, name, requests, placement, origin)

    async def _imagine_requests(self, owner: Owner, prompt: str, provider: str | None,
                                images: Sequence[ImageInput], speed: Speed | None,
                                ) -> tuple[str, list[GenerationRequest]]:
        """The provider, and one request per job `prompt` makes: each permutation, repeated in place."""
        prefs = await self.settings(owner)
        name = self._provider_for(provider or prefs.get("provider"), Action.IMAGINE)
        caps = self._pool.get(name).capabilities
        if len(images) > caps.max_images:
            raise BadImage(t("{provider} takes at most {count} reference image(s) with a prompt.",
                             provider=name, count=caps.max_images))
        checked = tuple(self.checked(image, t("Image {i}", i=i)) for i, image in enumerate(images, start=1))
        most = self._config.limits.max_permutations
        requests: list[GenerationRequest] = []
        for text in permutations.expand(prompt, most):
            parsed = self._parse(text, name)
            params = parsed.params
            if params.aspect_ratio is None and prefs.get("aspect_ratio") and caps.flags.serves(Flag.ASPECT):
                params = params.model_copy(update={"aspect_ratio": prefs["aspect_ratio"]})
            chosen_speed = speed or parsed.speed or _speed(prefs.get("speed"))
            request = GenerationRequest(kind=Action.IMAGINE, prompt=params, images=checked,
                                        speed=chosen_speed, remix=parsed.remix)  # fmt: skip
            requests += [request] * parsed.repeat
        if len(requests) > most:
            raise InvalidPrompt(permutations.too_many(len(requests), most))
        return name, requests

    async def describe(
        self,
        caller: Caller,
        image: ImageInput,
        *,
        provider: str | None = None,
        placement: Placement | None = None,
        origin: str | None = None,
    ) -> Job:
        name = self._provider_for(provider, Action.DESCRIBE)
        request = GenerationRequest(kind=Action.DESCRIBE, images=(self.checked(image),))
        return await self._create(caller, name, request, placement, origin)

    async def shorten(
        self,
        caller: Caller,
        prompt: str,
        *,
        provider: str | None = None,
        placement: Placement | None = None,
        origin: str | None = None,
    ) -> Job:
        """/shorten: the provider's own where it has one (midjourney-proxy Plus), else the bot's
        analysis (bot/shorten.py, answered by the job runner without a provider call), so every
        provider serves it. Its result is up to five prompts, each a button that imagines it."""
        prefs = await self.settings(caller.owner)
        name = provider or prefs.get("provider") or self._config.default_provider
        parsed = self._parse(prompt, name)
        request = GenerationRequest(kind=Action.SHORTEN, prompt=parsed.params)
        return await self._create(caller, name, request, placement, origin)

    async def blend(
        self,
        caller: Caller,
        images: Sequence[ImageInput],
        *,
        dimensions: BlendDimensions | None = None,
        provider: str | None = None,
        placement: Placement | None = None,
        origin: str | None = None,
    ) -> Job:
        name = self._provider_for(provider, Action.BLEND)
        low, high = self._pool.get(name).capabilities.blend_range
        if not low <= len(images) <= high:
            raise BadImage(t("Blend takes {low} to {high} images; got {count}.", low=low, high=high,
                             count=len(images)))
        checked = tuple(self.checked(image, t("Image {i}", i=i)) for i, image in enumerate(images, start=1))
        request = GenerationRequest(kind=Action.BLEND, images=checked, dimensions=dimensions)
        return await self._create(caller, name, request, placement, origin)

    async def act(
        self, caller: Caller, job_id: str, action: str, index: int = 0, *, placement: Placement | None = None,
        prompt: str | None = None, origin: str | None = None, mask: ImageInput | None = None,
    ) -> tuple[Job, bool]:
        """Press a button. Returns the job for that press and whether it is new (False: pressed before).

        Who may press is the access policy's (`may_press`: NotAllowed for others, before anything is
        made). Only a new job is charged; a repeated press of a live button returns its job, even at a
        limit. With a `prompt` it is a Remix press (see `_remixed`): one job per answer (`origin`, the
        platform event that carried it), beside any live job of the same button.
        """
        if origin is not None and (earlier := await self._store.by_origin(origin)) is not None:
            return earlier, False  # the same answer processed again after a restart
        parent = await self._pressable(caller, job_id)
        owner = caller.owner
        if action == PICK_PROMPT:
            child = self._pick_prompt(owner, parent, index, placement)
        else:
            child = self._child(owner, parent, Action(action), index, placement)
        if child.kind is Action.CUSTOM_ZOOM and prompt is None:  # nothing to zoom by: ask first
            raise InvalidPrompt(t("Custom Zoom needs the prompt with --zoom 1-2 (CLI: --prompt)."))
        if child.kind is Action.VARY_REGION:  # its mask (and, optionally, an edited prompt) from the web
            child = self._region(child, mask, prompt, origin)
        elif mask is not None:
            label = button_label(child.kind.value, child.index)
            raise UnsupportedAction(t("{label} takes no region.", label=label))
        elif prompt is not None:
            child = self._remixed(child, prompt, origin)
        where = await self._admit(caller, child)
        async with self.quotas.lock, self._store.transaction():
            exempt = self._exempt(caller)
            if not exempt:
                try:
                    await self.quotas.check(owner, where, child.kind)
                except QuotaExceeded:
                    earlier = await self._store.active_child(parent.id, child.kind, child.index)
                    if earlier is None or child.origin is not None:
                        raise
                    return earlier, False
            insert = self._store.insert if child.origin is not None else self._store.insert_child
            job, created = await insert(child)
            if created:
                await self.quotas.charge(job, where, exempt)
        if created:
            await self._listener.job_changed(job)
            self._wake()
        return job, created

    async def cancel(self, caller: Caller, job_id: str) -> Job:
        """Cancel a queued (or, where the provider can, a running) job. Who may is the access policy's
        (`may_cancel`: the owner, an admin of the chat, an operator; anyone without owner-only buttons)."""
        job = await self.get(job_id)
        self.access.check_cancel(caller, job)
        owner = caller.owner
        if job.terminal:
            raise UnsupportedAction(t(_ENDED.get(job.state, _ENDED[JobState.FAILED]), id=job.id))
        provider = self._pool.get(job.provider)
        if job.state is not JobState.QUEUED:
            if not provider.capabilities.cancel or job.provider_task_id is None:
                raise UnsupportedAction(t("{provider} cannot cancel a job once it has started.",
                                          provider=job.provider))
            await provider.cancel(job.provider_task_id)
        with i18n.use(job.locale):  # stored on the job: written in the language it was asked in
            note = t("Cancelled by {name}.", name=owner.name) if owner.name else t("Cancelled by its owner.")
        ended = job.model_copy(update={"state": JobState.CANCELLED, "error": note,
                                       "next_poll_at": None, "updated_at": self._clock()})
        stored = await self._store.save(ended, job)
        if stored is None:
            raise UnsupportedAction(t("Job {id} finished before it could be cancelled.", id=job.id))
        await self._listener.job_changed(stored)
        return stored

    # -- queries ----------------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job:
        job = await self._store.get(job_id.strip().lower())
        if job is None:
            raise UnknownJob(t("There is no job '{id}'.", id=job_id))
        return job

    async def recent(self, owner: Owner | None = None, limit: int = 20) -> list[Job]:
        return await self._store.recent(limit, owner)

    async def usage(self, caller: Caller) -> Usage:
        """The caller's usage and what is left (for /info), with their server's or group's (`scope`)."""
        return await self.quotas.usage(caller.owner, caller.scope_key, self._exempt(caller))

    async def queue_position(self, job: Job) -> int:
        return await self._store.queue_position(job)

    async def inputs(self, job: Job) -> tuple[ImageInput, ...]:
        """The images a job was given, with their bytes (stored apart from the job)."""
        return (await self._store.inputs.load(job.request)).images

    async def by_message(self, platform: str, chat_id: str, message_id: str) -> Job | None:
        return await self._store.by_message(platform, chat_id, message_id)

    async def place(self, job: Job, placement: Placement) -> Job:
        """Record where a job is shown (the message the frontend sent for it)."""
        placed = await self._store.place(job.id, placement)
        if placed is None:
            raise UnknownJob(t("There is no job '{id}'.", id=job.id))
        await self._listener.job_changed(placed)  # changes made before it had a message get shown now
        return placed

    async def unplace(self, job: Job) -> None:
        """The job's first message can't be sent (the chat is gone): it is shown nowhere."""
        await self._store.unplace(job.id)

    async def unreplied(self, platform: str) -> list[Job]:
        """Jobs meant to be shown on `platform` whose first message was never sent (the reply outbox)."""
        return await self._store.unreplied(platform)

    async def delivered(self, job: Job) -> None:
        """The frontend showed the job's final state in its message: a restart need not re-send it."""
        if job.terminal:
            await self._store.mark_delivered(job.id, job.state)

    async def undelivered(self, platform: str, within: float = 7 * 86400.0) -> list[Job]:
        """Jobs that ended (in the last `within` seconds) without their final edit on `platform` being
        recorded: pending when the bot stopped, or finished while no frontend listened."""
        return await self._store.undelivered(platform, self._clock() - within)

    async def queued_jobs(self, per_provider: int = 500) -> list[Job]:
        """Every provider's queued jobs, oldest first (at most `per_provider` each)."""
        jobs: list[Job] = []
        for name in self._pool.names:
            jobs.extend(await self._store.queued(name, float("inf"), per_provider))
        return jobs

    def providers(self) -> list[str]:
        return self._pool.names

    async def provider_status(self) -> list[ProviderStatus]:
        """Each provider with what it can do, its queue, its running jobs and whether it is paused."""
        now = self._clock()
        counts = await self._store.counts()
        return [
            ProviderStatus(
                name=name,
                type=self._pool.config(name).type,
                capabilities=self._pool.get(name).capabilities,
                queued=counts.get((name, JobState.QUEUED.value), 0),
                active=sum(counts.get((name, state.value), 0) for state in _ACTIVE),
                paused=self._pool.paused(name, now),
                last_success=self._pool.last_success.get(name),
                held=self._pool.held(name),
                rate_limited_until=self._pool.resume_at(name) if self._pool.rate_limited(name, now) else None,
            )
            for name in self._pool.names
        ]

    # -- per-user settings --------------------------------------------------------------------------

    async def settings(self, owner: Owner) -> dict[str, str]:
        """The user's stored defaults: `provider`, `aspect_ratio`, `speed`, `remix`, `language` (only
        those set)."""
        return await self._store.settings(owner.platform, owner.user_id)

    async def set_setting(self, owner: Owner, key: str, value: str) -> None:
        """Store one default after checking it; raises UserError naming what is wrong."""
        if key == languages.KEY:
            value = languages.checked(value)
        elif key == "remix":
            if value not in REMIX_SETTINGS:
                raise UserError(t("Remix is on or off; not '{value}'.", value=value))
        elif key == "provider":
            self._provider_for(value, Action.IMAGINE)
        elif key == "aspect_ratio":
            parse_prompt(f"x --ar {value}", max_length=100)
        elif key == "speed":
            if _speed(value) is None:
                raise InvalidPrompt(t("Speed must be one of relax, fast, turbo; not '{value}'.", value=value))
        else:
            raise UserError(t("There is no setting '{key}'. Settings: provider, aspect_ratio, speed, remix, "
                              "language.", key=key))
        await self._store.put_setting(owner.platform, owner.user_id, key, value)

    def can(self, provider: str, action: Action) -> bool:
        return self._pool.get(provider).capabilities.can(action)

    # -- Remix --------------------------------------------------------------------------------------

    async def remix_target(self, caller: Caller, job_id: str, action: str, index: int) -> Job | None:
        """The job whose button `caller` pressed, if the press first asks for the prompt (Remix); None
        for a plain press. The press is checked as `act` would check it, so nobody is asked for a
        prompt their answer could not use."""
        if action not in _REMIXABLE and action != Action.CUSTOM_ZOOM.value:
            return None  # most presses never ask: nothing is looked up on their way to `act`
        parent = await self.get(job_id)
        if not await self.asks_for_prompt(caller.owner, parent, action):
            return None
        self._check_press(caller, parent)
        self._child(caller.owner, parent, Action(action), index, None)  # offered, and the provider can
        return parent

    async def ask_prompt(self, request: PromptRequest) -> None:
        """Remember a Remix prompt asked for by a message (Telegram), until it is answered or cancelled
        (asked now: its `created_at` is set here)."""
        await self._store.prompts.add(dataclasses.replace(request, created_at=self._clock()))

    async def open_prompt(self, pressed: PromptRequest, within: float) -> PromptRequest | None:
        """The request `pressed` would duplicate: the same person's, for the same button, asked in the
        last `within` seconds and still open (a second press, or the press handled again)."""
        return await self._store.prompts.open_for(pressed, self._clock() - within)

    async def prompt_request(self, platform: str, chat_id: str, message_id: str) -> PromptRequest | None:
        return await self._store.prompts.get(platform, chat_id, message_id)

    async def close_prompt(self, request: PromptRequest) -> bool:
        """The request was answered (its job made) or cancelled; False when it already was."""
        return await self._store.prompts.remove(request.platform, request.chat_id, request.message_id)

    async def asks_for_prompt(self, owner: Owner, job: Job, action: str) -> bool:
        """Whether `owner` pressing `action` on `job` is first asked for the prompt (Remix): for the
        actions that take one, when the job was made with --remix or the presser's Remix setting is on
        (the presser's, as in Midjourney: their button press, their form)."""
        if action == Action.CUSTOM_ZOOM.value:  # its form is the point of it, Remix or not
            return True
        if action not in _REMIXABLE:
            return False
        return job.request.remix or (await self.settings(owner)).get("remix") == "on"

    @staticmethod
    def remix_prompt(job: Job, action: str | None = None) -> str:
        """The prompt a Remix form starts from: the job's own, as it would be typed."""
        prompt = job.request.prompt.full() if job.request.prompt else ""
        return with_zoom(prompt) if action == Action.CUSTOM_ZOOM.value else prompt  # as Midjourney fills it

    def _remixed(self, child: Job, prompt: str, origin: str | None) -> Job:
        """`child` with the person's edited prompt, checked like a new command's (length, flags) for
        the parent's provider. Speeds and --remix in it apply to this job; it keeps the rest."""
        if child.kind is Action.CUSTOM_ZOOM:
            return self._zoomed(child, prompt, origin)
        if child.kind not in REMIXABLE:
            label = button_label(child.kind.value, child.index)
            raise UnsupportedAction(t("{label} takes no prompt to remix.", label=label))
        parsed = self._parse(prompt, child.provider)
        request = child.request.model_copy(update={
            "prompt": parsed.params, "remixed": True, "remix": child.request.remix or parsed.remix,
            "speed": parsed.speed or child.request.speed})  # fmt: skip
        return child.model_copy(update={"request": request, "origin": origin or f"remix:{child.id}"})

    def _region(self, child: Job, mask: ImageInput | None, prompt: str | None, origin: str | None) -> Job:
        """A Vary (Region) with the person's mask (a black/white PNG, white = the region; empty is
        refused before anything is made or charged) and, if they edited it, their prompt (Remix)."""
        if mask is None:
            raise UnsupportedAction(t("Vary (Region) needs a region drawn on the image: use the web editor."))
        checked = media.region_mask(mask.data, max_pixels=self._config.media.max_pixels)  # BadImage: empty
        update: dict[str, object] = {"mask": ImageInput(data=checked, mime="image/png", filename="mask.png")}
        if prompt is not None and prompt.strip():
            parsed = self._parse(prompt, child.provider)
            update |= {"prompt": parsed.params, "remixed": True, "speed": parsed.speed or child.request.speed}
        request = child.request.model_copy(update=update)
        return child.model_copy(update={"request": request, "origin": origin or f"region:{child.id}"})

    def _zoomed(self, child: Job, prompt: str, origin: str | None) -> Job:
        """A Custom Zoom with the person's answer: `--zoom` (1-2, else InvalidPrompt before anything
        is made or charged) goes beside the prompt, which is checked like a new command's."""
        text, factor = split_zoom(prompt)
        parsed = self._parse(text, child.provider)
        request = child.request.model_copy(update={"prompt": parsed.params, "zoom": factor,
                                                   "speed": parsed.speed or child.request.speed})  # fmt: skip
        return child.model_copy(update={"request": request, "origin": origin or f"zoom:{child.id}"})

    def checked(self, image: ImageInput, what: str | None = None) -> ImageInput:
        """`image` with its type, checked; `what` names it in a refusal (translated; "The image")."""
        mime = media.check_image(image.data, self._config.media.max_download_bytes, what or t("The image"),
                                 max_pixels=self._config.media.max_pixels)
        return image.model_copy(update={"mime": mime})

    # -- internals --------------------------------------------------------------------------------

    async def _pressable(self, caller: Caller, job_id: str) -> Job:
        """The job whose button `caller` pressed, if they may press it and it has buttons."""
        parent = await self.get(job_id)
        self._check_press(caller, parent)
        return parent

    def _check_press(self, caller: Caller, parent: Job) -> None:
        """`caller` may press `parent`'s buttons, and it has buttons (it succeeded)."""
        self.access.check_press(caller, parent)
        if parent.state is not JobState.SUCCEEDED:
            if parent.terminal:
                raise UnsupportedAction(t(_NO_BUTTONS.get(parent.state, _NO_BUTTONS[JobState.FAILED]),
                                          id=parent.id))
            raise JobNotFinished(t(_STILL[parent.state], id=parent.id) if parent.state in _STILL else
                                 t("Job {id} is still {state}; wait for it to finish.", id=parent.id,
                                   state=parent.state.value))

    def _provider_for(self, requested: str | None, action: Action) -> str:
        name = requested or self._config.default_provider
        if not self._pool.get(name).capabilities.can(action):
            able = [n for n in self._pool.names if self._pool.get(n).capabilities.can(action)]
            cannot = t(_CANNOT[action], provider=name)
            if able:
                cannot = t("{refusal} Try: {providers}.", refusal=cannot, providers=", ".join(able))
            raise UnsupportedAction(cannot)
        return name

    def _parse(self, prompt: str, provider: str) -> ParsedPrompt:
        """`prompt` as typed, checked against what `provider` takes: its length and its flags."""
        limit = self._pool.config(provider).max_prompt_length
        policy = self._pool.get(provider).capabilities.flags
        return parse_prompt(prompt, max_length=limit, provider=provider, policy=policy,
                            max_repeat=self._config.limits.max_repeat)

    def _new_job(self, owner: Owner, provider: str, request: GenerationRequest, placement: Placement | None,
                 kind: Action, parent: Job | None = None, index: int = 0) -> Job:
        now = self._clock()
        return Job(
            id=new_job_id(), kind=kind, parent_id=parent.id if parent else None, index=index,
            provider=provider, request=request, owner=owner, placement=placement,
            created_at=now, updated_at=now, deadline=now + self._pool.config(provider).job_timeout,
            locale=i18n.current(),
        )

    def _exempt(self, caller: Caller) -> bool:
        chat_admin = caller.chat_admin and self._config.limits.exempt_chat_admins
        return chat_admin or self.access.is_operator(caller)

    async def _admit(self, caller: Caller, job: Job) -> str | None:
        """Everything checked before a job may cost anything: access, a held provider, banned words.
        Returns the chat scope key the job is counted under (the caller's scope, else the job's chat)."""
        chat = job.placement.chat_id if job.placement else None
        await self.access.check(caller, chat)
        if self._pool.held(job.provider):
            others = [n for n in self._pool.names if not self._pool.held(n) and self.can(n, job.kind)]
            paused = t("Provider '{provider}' is paused by an admin.", provider=job.provider)
            if others and job.parent_id is None:
                paused = t("{refusal} Try: {providers}.", refusal=paused, providers=", ".join(others))
            raise ProviderPaused(paused)
        if job.request.prompt is not None:
            self.moderator.check(job.request.prompt.full())
        return scope_key(caller.owner.platform, caller.scope or chat)

    async def _create(self, caller: Caller, provider: str, request: GenerationRequest,
                      placement: Placement | None, origin: str | None = None) -> Job:
        """One new job (see `_create_set`)."""
        jobs, _ = await self._create_set(caller, provider, [request], placement, origin)
        return jobs[0]

    async def _create_set(self, caller: Caller, provider: str, requests: Sequence[GenerationRequest],
                          placement: Placement | None, origin: str | None) -> tuple[list[Job], bool]:
        """Check, store and charge new jobs in one transaction: all of them or none (a quota that can't
        cover every one refuses them all). The same `origin` (a platform event processed again after a
        restart) returns the jobs it created the first time, charged once (False). Each job of a set
        has its own origin (`batch_origins`: the store keeps origins unique)."""
        origins = batch_origins(origin, len(requests))
        if (earlier := await self._earlier(origins)) is not None:
            return earlier, False  # admitted when it was made: a ban or pause since doesn't undo it
        owner = caller.owner
        jobs = [self._new_job(owner, provider, request, placement, request.kind).model_copy(
                    update={"origin": key}) for request, key in zip(requests, origins, strict=True)]
        admitted: dict[str, str | None] = {}  # each distinct prompt checked once (moderation)
        for job in jobs:
            key = job.request.prompt.full() if job.request.prompt else ""
            if key not in admitted:
                admitted[key] = await self._admit(caller, job)
        where = admitted[next(iter(admitted))]
        if requests[0].images:  # stored once, apart from the jobs' rows, which name them (all the same)
            stored = await self._store.inputs.keep(requests[0].images, self._clock())
            jobs = [job.model_copy(update={"request": job.request.model_copy(update={"images": stored})})
                    for job in jobs]  # fmt: skip
        try:
            async with self.quotas.lock, self._store.transaction():
                if (earlier := await self._earlier(origins)) is not None:
                    return earlier, False
                exempt = self._exempt(caller)
                if not exempt:
                    await self.quotas.check(owner, where, jobs[0].kind, count=len(jobs))
                for job in jobs:
                    kept, _ = await self._store.insert(job)
                    if kept.id != job.id:  # another worker stored the same event's jobs meanwhile
                        raise _Raced
                    await self.quotas.charge(job, where, exempt)
        except _Raced:  # this transaction rolled back: theirs count
            return await self._earlier(origins) or [], False
        await faults.point("job_created")
        for job in jobs:
            await self._listener.job_changed(job)
        self._wake()
        return jobs, True

    async def _earlier(self, origins: Sequence[str | None]) -> list[Job] | None:
        """The jobs stored for `origins` before, or None. A set is stored whole: its first tells."""
        if origins[0] is None or (first := await self._store.by_origin(origins[0])) is None:
            return None
        rest = [await self._store.by_origin(key) for key in origins[1:] if key is not None]
        return [first, *(job for job in rest if job is not None)]

    def _child(
        self, owner: Owner, parent: Job, action: Action, index: int, placement: Placement | None
    ) -> Job:
        label = button_label(action.value, index)  # as the button (and the CLI's hint) names it
        if offer_key(action, index) not in parent.actions:
            raise UnsupportedAction(t("Job {id} does not offer {label} ({provider}).", id=parent.id,
                                      label=label, provider=parent.provider))
        if not self._pool.get(parent.provider).capabilities.can(action):
            raise UnsupportedAction(t("{provider} cannot do {label}.", provider=parent.provider, label=label))
        request = parent.request.model_copy(update={"kind": action, "images": (), "remixed": False})
        return self._new_job(owner, parent.provider, request, placement, action, parent, index)

    def _pick_prompt(self, owner: Owner, parent: Job, index: int, placement: Placement | None) -> Job:
        prompts = parent.result.prompts if parent.result else []
        if not 1 <= index <= len(prompts):
            raise UnsupportedAction(t("Job {id} has no prompt {index} to imagine.", id=parent.id,
                                      index=index))
        name = self._provider_for(None, Action.IMAGINE)
        try:
            parsed = self._parse(prompts[index - 1], name)
        except InvalidPrompt:
            parsed = parse_prompt(prompts[index - 1].split(" --")[0], max_length=10_000)
        request = GenerationRequest(kind=Action.IMAGINE, prompt=parsed.params, speed=parsed.speed)
        return self._new_job(owner, name, request, placement, Action.IMAGINE, parent, index)
